"""The gates on a version's logged metrics: absolute floors and ceilings, and the regression
allowed against production's run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ml.promotions.gates.base import GateInput, gate

LOWER_IS_BETTER = frozenset({"brier", "log_loss"})


def _bound(g: GateInput, kind: str, bounds: Mapping[str, float] | None, sign: str) -> Iterable:
    metrics = g.metrics()
    for metric, limit in sorted((bounds or {}).items()):
        value = metrics.get(metric)
        ok = value is not None and (value >= limit if sign == ">=" else value <= limit)
        shown = "missing" if value is None else f"{value:.4f}"
        yield f"{kind}:{metric}", ok, f"{metric} {shown} {sign} {limit}"


@gate("floor")
def floors(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    return _bound(g, "floor", g.config.floors, ">=")


@gate("ceiling")
def ceilings(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    return _bound(g, "ceiling", g.config.ceilings, "<=")


@gate("regression")
def regression(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    prod = g.production
    limits = sorted((g.config.max_regression or {}).items())
    if prod is None:
        reason = (
            "no production version"
            if g.state.holder("production") is None
            else "already production"
        )
        for metric, _ in limits:
            yield f"regression:{metric}", True, f"skipped ({reason})"
        return
    mine, base = g.metrics(), g.metrics(prod)
    for metric, allowed in limits:
        new, old = mine.get(metric), base.get(metric)
        if new is None or old is None:
            yield (
                f"regression:{metric}",
                False,
                f"{metric} missing on v{g.info.version} or production",
            )
            continue
        drop = (new - old) if metric in LOWER_IS_BETTER else (old - new)
        yield (
            f"regression:{metric}",
            drop <= allowed,
            f"{metric} v{g.info.version} {new:.4f} vs production v{prod.version} {old:.4f}: "
            f"worse by {drop:+.4f} (allowed {allowed})",
        )
