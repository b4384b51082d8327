"""`rollback MODEL [--to N]`: write the rollback as an edit to `promotions.yaml`.

The target is the version applied to production before the current one (registry tags written by
`apply`; git history when the registry has none). The edit keeps comments and layout (ruamel.yaml
round trip) and sets `rollback: true` plus a note, which makes the waiver of the regression gate
explicit in validate/plan output. Integrity gates, required tags, signature and floors still apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml import github
from ml.errors import RollbackError
from ml.promotions.history import git_events
from ml.promotions.records import records
from ml.promotions.spec import edit_entry, load_spec
from ml.registry import ModelState


@dataclass(frozen=True)
class RollbackResult:
    """What the edit did."""

    model: str
    from_version: int
    to_version: int
    note: str


def previous_production(state: ModelState | None, current: int, spec_path: Path, model: str) -> int:
    """Most recent version applied to production other than `current`."""
    applied = [
        (str(record.get("time", "")), v.version)
        for v in (state.versions.values() if state else [])
        if v.version != current
        for record in records(v, "production")
        if "raw" not in record  # unreadable JSON
    ]
    if applied:
        return max(applied)[1]
    seen = [
        e["version"]
        for *_, e in git_events(spec_path, model)
        if e and isinstance(e.get("version"), int)
    ]
    older = [v for v in seen if v != current]
    if older:
        return older[-1]
    raise RollbackError(
        f"{model}: no previous production version in the registry tags or git history "
        "(hint: pass --to N)"
    )


def write_rollback(
    spec_path: Path, model: str, state: ModelState | None, to: int | None, reason: str | None
) -> RollbackResult:
    """Edit the file in place; the regression waiver is the `rollback: true` it writes."""
    loaded = load_spec(spec_path)
    entry = loaded.spec.models.get(model)
    if entry is None:
        raise RollbackError(
            f"{spec_path}: no model {model!r} (known: {sorted(loaded.spec.models)})"
        )
    current = entry.version
    if state is not None and state.aliases.get("production") is not None:
        current = state.aliases["production"]
    target = to if to is not None else previous_production(state, current, spec_path, model)
    if target == entry.version:
        raise RollbackError(f"{model}: {spec_path} already names v{target}")
    if state is not None and target not in state.versions:
        raise RollbackError(f"{model} v{target} does not exist in the registry")
    note = f"rollback: production v{current} → v{target}" + (f" ({reason})" if reason else "")
    edit_entry(spec_path, model, version=target, note=note, rollback=True)
    return RollbackResult(model, current, target, note)


def commit_rollback(spec_path: Path, result: RollbackResult) -> str:
    """Create a branch and commit the edit; returns the branch name."""
    branch = f"rollback/{result.model}-v{result.to_version}"
    github.commit_on_branch(
        spec_path.resolve().parent,
        branch,
        [spec_path.resolve()],
        f"rollback({result.model}): production v{result.from_version} → v{result.to_version}"
        f"\n\n{result.note}",
    )
    return branch


def open_pr(spec_path: Path, result: RollbackResult, branch: str) -> str:
    """Push the branch and open the PR with `gh`; `GitHubError` (exit 12) when gh is missing."""
    return github.push_and_open_pr(
        spec_path.resolve().parent,
        branch,
        f"Rollback {result.model} to v{result.to_version}",
        f"{result.note}\n\nWritten by `mlops rollback`. The regression gate is waived "
        "(`rollback: true`); integrity gates still apply.",
    )
