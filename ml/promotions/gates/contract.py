"""The `signature` gate: the candidate's model contract (features, dtypes, codes, ranges)
fits its own signature and, unless allowed, matches production's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ml.errors import ContractError, RegistryError
from ml.promotions.gates.base import GateInput, gate

if TYPE_CHECKING:
    from ml.contract import ModelContract


def contract_changes(old: ModelContract, new: ModelContract) -> list[str]:
    """What a reviewer must know changed between two contracts, one phrase per change: features
    added or removed, dtypes, required, codes and ranges (reasons and order are not a change:
    each version scores its own column order)."""
    before = {f.name: f for f in old.features}
    after = {f.name: f for f in new.features}
    changes = []
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    if added:
        changes.append(f"added {added}")
    if removed:
        changes.append(f"removed {removed}")
    for name in (n for n in after if n in before):
        a, b = before[name], after[name]
        if a.dtype != b.dtype:
            changes.append(f"{name}: dtype {a.dtype} → {b.dtype}")
        if (a.codes and sorted(a.codes), a.minimum, a.maximum) != (
            b.codes and sorted(b.codes),
            b.minimum,
            b.maximum,
        ):
            changes.append(f"{name}: {a.allowed()} → {b.allowed()}")
        if a.required != b.required:
            changes.append(
                f"{name}: {'required' if a.required else 'optional'} → "
                f"{'required' if b.required else 'optional'}"
            )
    return changes


@gate("signature")
def signature(g: GateInput) -> Iterable[tuple[str, bool, str]]:
    """The candidate's contract (features, dtypes, codes, ranges) against production's."""
    prod = g.production
    try:
        mine, source = g.contract()
    except (ContractError, RegistryError) as exc:
        yield "signature", False, f"no usable contract: {exc}"
        return
    if prod is None:
        aside = "; not compared with production: re-sync" if g.resync else ""
        yield (
            "signature",
            True,
            f"its {source} contract ({len(mine.features)} features) fits its signature{aside}",
        )
        return
    hint = " (hint: set allow_schema_change: true in the gates file by PR)"
    try:
        theirs, _ = g.contract(prod)
    except (ContractError, RegistryError) as exc:
        allowed = bool(g.config.allow_schema_change)
        yield (
            "signature",
            allowed,
            f"cannot compare with production v{prod.version}'s contract ({exc})"
            + ("; allowed by allow_schema_change" if allowed else hint),
        )
        return
    changes = contract_changes(theirs, mine)
    if not changes:
        yield (
            "signature",
            True,
            f"contract matches production v{prod.version}'s ({len(mine.features)} features, "
            "dtypes, codes and ranges)",
        )
        return
    shown = "; ".join(changes[:8]) + (f"; and {len(changes) - 8} more" if len(changes) > 8 else "")
    if g.config.allow_schema_change:
        yield (
            "signature",
            True,
            f"contract differs from production v{prod.version}'s: {shown}; "
            "allowed by allow_schema_change in the gates file",
        )
    else:
        yield (
            "signature",
            False,
            f"contract differs from production v{prod.version}'s: {shown}{hint}",
        )
