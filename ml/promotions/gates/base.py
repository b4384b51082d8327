"""What a gate is: a function of a `GateInput` yielding outcomes, named with `@gate`.

A gate is a plain function `check(g: GateInput) -> Iterable[Outcome]`, each outcome
`(gate, passed, detail)` or `(gate, passed, detail, figures)`; `@gate("name")` names it (its
results are named `name` or `name:<detail>`). Naming registers nothing: the gates that run, and
their order, are listed in one place, `ml.promotions.gates.catalog`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import ContractError, RegistryError

if TYPE_CHECKING:
    from ml.batch import ScoringModel
    from ml.contract import ModelContract
    from ml.promotions.gates.config import ModelGates
    from ml.registry import ModelState, Registry, VersionInfo


@dataclass(frozen=True)
class GateInput:
    """What a gate sees: the version, its model as observed, the model's gates, the adapter.

    `scoring_model` and `contract` load once per evaluation: the loadable, signature and canary
    gates share them (a failure is kept too, so it is reported, not retried).
    """

    registry: Registry
    info: VersionInfo
    state: ModelState
    config: ModelGates
    rollback: bool
    cache: dict[tuple[str, int], Any] = field(default_factory=dict, compare=False, repr=False)
    resync: bool = False

    @property
    def production(self) -> VersionInfo | None:
        """The version production serves, when it is another one (None for a re-sync: the alias
        names a version moved there outside git, nothing to judge the candidate against)."""
        if self.resync:
            return None
        prod = self.state.holder("production")
        return prod if prod is not None and prod.version != self.info.version else None

    def metrics(self, info: VersionInfo | None = None) -> dict[str, float]:
        """Run metrics of `info` (default: the candidate)."""
        target = info or self.info
        return self.registry.run_metrics(target.run_id) if target.run_id else {}

    def _once(self, kind: str, info: VersionInfo, load: Callable[[], Any]) -> Any:
        key = (kind, info.version)
        if key not in self.cache:
            try:
                self.cache[key] = load()
            except (RegistryError, ContractError) as exc:
                self.cache[key] = exc
        found = self.cache[key]
        if isinstance(found, Exception):
            raise found
        return found

    def scoring_model(self, info: VersionInfo | None = None) -> ScoringModel:
        """`info` (default: the candidate) loaded from the artefact store as batch scoring and
        serve load it: the booster, the contract, the input example.

        Raises:
            RegistryError: the artifacts cannot be downloaded or loaded (the message names why).
            ContractError: the contract is malformed or does not fit the signature.
        """
        from ml.batch import ModelRef, load_version

        target = info or self.info

        def load() -> ScoringModel:
            with tempfile.TemporaryDirectory(prefix="gate-load-") as tmp:
                return load_version(
                    self.registry, ModelRef(target.name, version=target.version), Path(tmp)
                )

        return self._once("model", target, load)

    def contract(self, info: VersionInfo | None = None) -> tuple[ModelContract, str]:
        """The contract `info` (default: the candidate) is held to and its source (its logged
        `contract.json`, or the built-in one for a version from before contracts): the loaded
        model's, or, when it does not load, read from its signature and run.

        Raises:
            ContractError: no signature, or the contract is malformed or disagrees with it.
        """
        from ml.contract import CONTRACT_FILE
        from ml.version_contract import contract_for

        target = info or self.info

        def read() -> tuple[ModelContract, str]:
            # the loadable gate loads every version it judges anyway, and the loaded model
            # holds this very contract (same signature, same file): one download, not two
            try:
                model = self.scoring_model(target)
            except (RegistryError, ContractError):
                model = None  # read it on its own, so the message says what is wrong with it
            if model is not None:
                return model.contract, model.contract_source
            signature = self.registry.signature_inputs(target.name, target.version)
            if not signature:
                raise ContractError(f"v{target.version} was logged without an input signature")
            with tempfile.TemporaryDirectory(prefix="gate-contract-") as tmp:
                logged = (
                    self.registry.download_run_file(target.run_id, CONTRACT_FILE, Path(tmp))
                    if target.run_id
                    else None
                )
                return contract_for(logged, signature)

        return self._once("contract", target, read)


Outcome = tuple[str, bool, str] | tuple[str, bool, str, Mapping[str, Any]]
Check = Callable[[GateInput], Iterable[Outcome]]


def gate(name: str) -> Callable[[Check], Check]:
    """Name a gate `name` (its results are named `name` or `name:<detail>`); the catalog lists
    which gates run."""

    def named(check: Check) -> Check:
        check.gate_name = name  # type: ignore[attr-defined]
        return check

    return named


def gate_name(check: Check) -> str:
    """The name `@gate` gave `check`."""
    name = getattr(check, "gate_name", None)
    if not isinstance(name, str):
        raise TypeError(f"{check!r} is not a gate (decorate it with @gate(name))")
    return name
