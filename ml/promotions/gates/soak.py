"""Production's `soak` gate: the version was verified in staging at least `soak` ago (the
staging apply record's time). It depends on the clock, so it is never cached."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ml.promotions.gates.results import GateResult
from ml.promotions.records import first_verified, pending_operation

if TYPE_CHECKING:
    from ml.promotions.gates.config import ModelGates
    from ml.registry import ModelState


def soak_result(
    state: ModelState | None, name: str, version: int, config: ModelGates, *, rollback: bool
) -> GateResult | None:
    """Production's `soak` gate: the version was verified in staging at least `soak` ago.

    None when no soak is configured. An explicit rollback (break-glass) waives it; it depends
    on the clock, so it is never cached.
    """
    if config.soak is None or state is None or version not in state.versions:
        return None
    from ml.monitoring.logs import parse_duration

    need = parse_duration(config.soak)
    info = state.versions[version]
    since = first_verified(info, "staging", pending_operation(state.tags, "staging"))
    if since is None:
        result = GateResult(
            name,
            "soak",
            False,
            f"v{version} was never verified in staging; production needs {config.soak} there "
            "(hint: apply --env staging and wait, or lower `soak` by PR)",
        )
    else:
        soaked = (datetime.now(UTC) - since).total_seconds()
        result = GateResult(
            name,
            "soak",
            soaked >= need,
            f"verified in staging at {since:%Y-%m-%dT%H:%M:%SZ}: {soaked / 3600:.1f} h of the "
            f"{config.soak} soak"
            + ("" if soaked >= need else " (hint: wait, or lower `soak` by PR)"),
        )
    if rollback and not result.passed:
        return replace(
            result, passed=True, waived=True, detail=result.detail + " [waived: rollback]"
        )
    return result
