"""The governance gates, registered with the promotion gates (`ml.promotions.gates.gate`).

- `protected-inputs` (integrity-style: never waived): a version may not use a protected column
  that `config/governance.yaml` keeps out of the inputs. What counts is what the booster does:
  a tree splitting on the column is a use, whatever the training run says. A refusal names the
  file and line that refused it.
- `fairness:<attribute>`: the version's decisions on the reviewed holdout (rebuilt as training
  builds it, as the canary's is), per group of each protected attribute against its reference
  group, within the bounds of `governance.fairness` (ml/governance/fairness.py).
- `canary-fairness:<attribute>`: the same figures and bounds on the canary's replay, the
  candidate judged and production shown beside (ml/governance/canary_fairness.py); runs where
  the canary runs (a production version to compare with, `canary:` enabled).

All run only where the gates file has a `governance:` section (config/gates.yaml does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.errors import ConfigError, ContractError, DataError, RegistryError
from ml.governance import canary_fairness, fairness
from ml.governance.config import Governance, governance_at
from ml.governance.training import used_features
from ml.promotions.gates import GateInput, Outcome, gate

if TYPE_CHECKING:
    import pandas as pd

    from ml.batch import ScoringModel


def booster_of(model: ScoringModel) -> Any | None:
    """The native booster behind a loaded version, or None (another flavor)."""
    return getattr(model.predictor, "booster", None)


def _used(model: ScoringModel) -> set[str] | None:
    booster = booster_of(model)
    if booster is None:
        return None
    used = used_features(booster)
    names = model.contract.names
    # A booster saved without feature names reports f0, f1, ...: signature order.
    return {names[int(u[1:])] if u[:1] == "f" and u[1:].isdigit() else u for u in used}


@gate("protected-inputs")
def _protected_inputs(g: GateInput) -> Iterable[Outcome]:
    settings = g.config.governance
    if settings is None:
        return
    try:
        governance = governance_at(settings.file)
    except ConfigError as exc:
        yield "protected-inputs", False, f"cannot read the governance file: {exc}"
        return
    try:
        model = g.scoring_model()
    except (RegistryError, ContractError):
        yield "protected-inputs", False, f"not run: v{g.info.version} does not load (see loadable)"
        return
    used = _used(model)
    v = g.info.version
    for name, attr in governance.protected.items():
        if name not in model.contract.names:
            yield f"protected-inputs:{name}", True, f"{name} is not an input of v{v}"
            continue
        where = governance.where("protected", name, "input")
        if attr.input:
            yield (
                f"protected-inputs:{name}",
                True,
                f"{name} is an input of v{v}, allowed by {where} (input: true): {attr.reason}",
            )
        elif used is None:
            yield (
                f"protected-inputs:{name}",
                False,
                f"v{v} takes {name} and is not a booster whose splits can show it unused; "
                f"{where} says protected.{name}.input: false (hint: retrain with the default "
                "governance, or allow it there with a reason by PR)",
            )
        elif name in used:
            yield (
                f"protected-inputs:{name}",
                False,
                f"v{v} was trained on {name} (its trees split on it), but {where} says "
                f"protected.{name}.input: false (hint: retrain with that file, or allow "
                f"{name} there with input: true and a reason, by PR)",
            )
        else:
            yield (
                f"protected-inputs:{name}",
                True,
                f"v{v} carries {name} for monitoring but no tree splits on it ({where}: "
                "input: false)",
            )


def holdout() -> tuple[pd.DataFrame, np.ndarray]:
    """The reviewed holdout's features (protected columns included) and labels."""
    from ml.settings import MLSettings

    settings = MLSettings()
    if not settings.data_sha256:
        raise ConfigError("the fairness gate's holdout needs ML_DATA_SHA256 (as training)")
    from ml.holdout import reviewed_holdout
    from ml.train_config import load_train_config

    config = load_train_config(settings.train_config)
    split = reviewed_holdout(
        settings.data_source, settings.data_sha256, config.seed, config.test_size
    )
    return split.x_test, split.y_test


def version_figures(
    model: ScoringModel, governance: Governance, bounds: fairness.FairnessBounds
) -> list[fairness.GroupFigures]:
    """Fairness figures of a loaded version on the reviewed holdout."""
    x, y = holdout()
    matrix = model.contract.matrix_from(x, dtype=np.float32)
    keep = ~model.contract.check_matrix(matrix).rows
    scores = model.score(matrix[keep])
    attributes = {n: x[n].to_numpy()[keep] for n in governance.protected if n in x.columns}
    return fairness.group_figures(scores, np.asarray(y)[keep], attributes, governance, bounds)


@gate("fairness")
def _fairness(g: GateInput) -> Iterable[Outcome]:
    settings = g.config.governance
    if settings is None or settings.fairness is None:
        return
    try:
        model = g.scoring_model()
    except (RegistryError, ContractError):
        yield "fairness", False, f"not run: v{g.info.version} does not load (see loadable)"
        return
    try:
        governance = governance_at(settings.file)
        figures = version_figures(model, governance, settings.fairness)
    except ContractError as exc:
        yield (
            "fairness",
            False,
            f"not run: v{g.info.version}'s inputs cannot be read from the reviewed holdout ({exc})",
        )
        return
    except (ConfigError, DataError) as exc:
        yield "fairness", False, f"not run: {exc}"
        return
    yield from fairness.outcomes(figures, settings.fairness)


@gate(canary_fairness.GATE)
def _canary_fairness(g: GateInput) -> Iterable[Outcome]:
    settings, config = g.config.governance, g.config.canary
    if settings is None or settings.fairness is None or config is None or not config.enabled:
        return
    name = canary_fairness.GATE
    prod = g.production
    if prod is None:
        if g.resync:
            reason = "re-sync: nothing to replay against (see canary)"
        elif g.state.holder("production") is None:
            reason = "no production version: no canary replay"
        else:
            reason = f"v{g.info.version} is production already"
        yield name, True, f"skipped: {reason}"
        return
    try:
        candidate, production = g.scoring_model(), g.scoring_model(prod)
    except (RegistryError, ContractError):
        yield name, False, "not run: a version does not load (see loadable and canary)"
        return
    from ml.promotions import canary

    try:
        governance = governance_at(settings.file)
        figures = canary_fairness.replay_figures(
            candidate, production, canary.replay_for(config), governance, settings.fairness
        )
    except (ConfigError, DataError) as exc:
        yield name, False, f"not run: {exc}"
        return
    yield from canary_fairness.outcomes(figures, settings.fairness)
