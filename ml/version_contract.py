"""The contract a model version is held to: the `contract.json` logged with it, else, for a
version from before contracts, the built-in credit-risk table (`ml.features.CONTRACT`).

Serving, batch scoring and the gates ask this module; `ml.contract` stays generic (it knows no
table), which keeps the contract types below the credit-risk table that is built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ml.contract import ModelContract, load_contract
from ml.errors import ContractError
from ml.features import CONTRACT

LOGGED = "logged"
BUILT_IN = "built-in"


def contract_for(logged: Path | None, signature: Mapping[str, str]) -> tuple[ModelContract, str]:
    """The contract a model version is held to, in its signature's column order, and its source.

    Args:
        logged: the version's `contract.json`, or None when its run has none.
        signature: the version's input signature, name → MLflow type, in column order.

    Returns:
        (contract, "logged") for a version with its own contract. A version logged before
        contracts existed has none: it gets the built-in credit-risk contract
        (`ml.features.CONTRACT`, "built-in") when its signature is exactly those features with
        those types, because its training data passed the same table's validation.

    Raises:
        ContractError: the logged contract is malformed or disagrees with the signature, or
            there is no contract and the signature is not the built-in one: a model whose inputs
            nobody bounded is never scored.
    """
    if logged is not None:
        contract, source = load_contract(logged), LOGGED
    else:
        contract, source = CONTRACT, BUILT_IN
    mismatches = contract.signature_mismatches(signature)
    if mismatches:
        if source == BUILT_IN:
            raise ContractError(
                "no contract.json in the version's run, and its signature is not the built-in "
                f"credit-risk contract ({'; '.join(mismatches[:3])}): log a contract with the "
                "model (ml.train does) and register it again"
            )
        raise ContractError(
            f"contract.json disagrees with the signature: {'; '.join(mismatches[:3])}"
        )
    return contract.reordered(list(signature)), source
