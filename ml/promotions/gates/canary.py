"""The `canary` gate: the candidate against today's production version on a replay set
(`ml.promotions.canary` computes the figures; this judges them against the bounds)."""

from __future__ import annotations

from collections.abc import Iterable

from ml.errors import ConfigError, ContractError, DataError, RegistryError
from ml.promotions import canary as replay
from ml.promotions.gates.base import GateInput, Outcome, gate


@gate("canary")
def canary(g: GateInput) -> Iterable[Outcome]:
    """The candidate against today's production version on a replay set: score PSI, approval
    rates at the serving threshold and flipped decisions, each within its bound."""
    config = g.config.canary
    if config is None or not config.enabled:
        return
    prod = g.production
    if prod is None:
        reason = (
            "no production version to compare with"
            if g.state.holder("production") is None
            else f"v{g.info.version} is production already"
        )
        yield "canary", True, f"skipped: {reason}"
        return

    try:
        candidate = g.scoring_model()
    except (RegistryError, ContractError):
        yield "canary", False, f"not run: v{g.info.version} does not load (see loadable)"
        return
    try:
        production = g.scoring_model(prod)
    except (RegistryError, ContractError) as exc:
        yield (
            "canary",
            False,
            f"not run: production v{prod.version} does not load, so there is nothing to compare "
            f"with ({exc}) (hint: fix production's artifacts, or set canary: {{enabled: false}} "
            "for this model by PR)",
        )
        return
    try:
        figures = replay.compare(
            candidate, production, replay.replay_for(config), *replay.threshold_of(config)
        )
    except (DataError, ConfigError) as exc:
        yield "canary", False, f"not run: {exc}"
        return
    yield from replay.outcomes(figures, config)
    if figures.rows < config.min_rows:
        yield (
            "canary:rows",
            False,
            f"only {figures.rows:,} replayed rows, fewer than min_rows {config.min_rows:,}: too "
            "few to judge (hint: replay the holdout, widen the window, or lower min_rows by PR)",
            figures.as_dict(),
        )
