"""`mlops versions MODEL`: every registered version with what it is and where it ran.

Like `gto show`: one row per version (newest first) with its aliases, legacy stage, status, key
holdout metrics, data version (`data_sha256` tag) and, per environment, when and by whom it was
first applied there (the apply records) and whether it runs there now. Reads the registry only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ml.promotions import render
from ml.promotions.records import ENVIRONMENTS, records

if TYPE_CHECKING:
    from ml.registry import ModelState, Registry

KEY_METRICS = ("roc_auc", "ks", "brier")


@dataclass(frozen=True)
class Applied:
    """The first and the latest apply of a version to one environment."""

    first: str
    by: str
    count: int
    resyncs: int


@dataclass(frozen=True)
class VersionRow:
    """One version as `mlops versions` shows it."""

    version: int
    aliases: tuple[str, ...]
    stage: str
    status: str
    metrics: Mapping[str, float]
    data: str | None
    git_sha: str | None
    environments: Mapping[str, Applied | None]


def _applied(found: list[dict[str, Any]]) -> Applied | None:
    readable = [r for r in found if "raw" not in r]
    if not readable:
        return None
    first = readable[0]
    return Applied(
        first=str(first.get("time", "?")),
        by=str(first.get("actor", "?")),
        count=len(readable),
        resyncs=sum(bool(r.get("resync")) for r in readable),
    )


def version_rows(registry: Registry, state: ModelState) -> list[VersionRow]:
    """Rows for every version of `state`, newest first (one metrics read per version)."""
    rows = []
    for number in sorted(state.versions, reverse=True):
        info = state.versions[number]
        metrics = registry.run_metrics(info.run_id) if info.run_id else {}
        rows.append(
            VersionRow(
                version=number,
                aliases=tuple(sorted(a for a, v in state.aliases.items() if v == number)),
                stage=info.stage,
                status=info.status,
                metrics={m: metrics[m] for m in KEY_METRICS if m in metrics},
                data=(info.tags.get("data_sha256") or None),
                git_sha=(info.tags.get("git_sha") or None),
                environments={env: _applied(records(info, env)) for env in ENVIRONMENTS},
            )
        )
    return rows


def _env_cell(applied: Applied | None, running: bool) -> str:
    if applied is None:
        return "running (no record)" if running else "-"
    extra = f" (+{applied.count - 1} more)" if applied.count > 1 else ""
    now = "running; " if running else ""
    return f"{now}since {applied.first} by {render.terminal(applied.by)}{extra}"


def versions_text(name: str, rows: list[VersionRow]) -> str:
    """An aligned table for the terminal."""
    header = ["version", "aliases", "stage", *KEY_METRICS, "data", "git", *ENVIRONMENTS]
    table = [header]
    for r in rows:
        table.append(
            [
                f"v{r.version}" + ("" if r.status == "READY" else f" ({r.status})"),
                ",".join(r.aliases) or "-",
                r.stage,
                *(f"{r.metrics[m]:.4f}" if m in r.metrics else "-" for m in KEY_METRICS),
                (r.data or "-")[:12],
                (r.git_sha or "-")[:12],
                *(_env_cell(r.environments[e], e in r.aliases) for e in ENVIRONMENTS),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"{name}: {len(rows)} version(s)"]
    for row in table:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def versions_json(name: str, rows: list[VersionRow]) -> str:
    """Machine-readable rows."""
    return json.dumps({"model": name, "versions": [asdict(r) for r in rows]}, indent=2)
