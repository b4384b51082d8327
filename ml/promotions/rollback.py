"""`rollback MODEL [--to N]`: write the rollback as an edit to `promotions.yaml`.

The target is the version applied to production before the current one (registry tags written by
`apply`; git history when the registry has none). The edit keeps comments and layout (ruamel.yaml
round trip) and sets `rollback: true` plus a note, which makes the waiver of the regression gate
explicit in validate/plan output. Integrity gates, required tags, signature and floors still apply.

A rollback is a rollback: the target must be older than the version production runs and must
have run there (an apply record on the version), or nothing is written (exit 8). A spec that
already names the target while the alias was moved outside git is a drift, and the message names
the re-sync that repairs it. An `environments:` entry gets its production pin changed only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.adapters import git, github
from ml.errors import RollbackError
from ml.promotions.history import entry_version, git_events
from ml.promotions.records import applied_version, has_record, records
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
    seen = [v for *_, e in git_events(spec_path, model) if (v := entry_version(e)) is not None]
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
    wanted = entry.version_in("production")
    current = wanted
    if state is not None and state.aliases.get("production") is not None:
        current = state.aliases["production"]
    target = to if to is not None else previous_production(state, current, spec_path, model)
    where = loaded.where(model)
    if target == wanted:
        applied = applied_version(state.tags, "production") if state else None
        if current != wanted and applied == wanted:
            raise RollbackError(
                f"{where}: {model}: the spec already names v{target} for production, and the "
                f"alias was moved outside git to v{current} (hint: `mlops promote apply --env "
                f"production --file {spec_path}` re-syncs it; `mlops promote status` shows it)"
            )
        raise RollbackError(f"{where}: {model}: {spec_path} already names v{target}")
    _check_target(state, model, target, current, spec_path)
    note = f"rollback: production v{current} → v{target}" + (f" ({reason})" if reason else "")
    edit_entry(spec_path, model, version=target, note=note, rollback=True, env="production")
    return RollbackResult(model, current, target, note)


def _check_target(
    state: ModelState | None, model: str, target: int, current: int, spec_path: Path
) -> None:
    """Refuse (RollbackError, exit 8) a target that is not older than production or that
    production never ran; nothing is written before this passes."""
    if state is None:
        raise RollbackError(f"{model} is not registered (hint: check the model name)")
    if target not in state.versions:
        raise RollbackError(
            f"{model} v{target} does not exist in the registry "
            f"(registered: {sorted(state.versions) or 'none'})"
        )
    if target >= current:
        raise RollbackError(
            f"{model}: v{target} is not older than production's v{current}; a rollback goes back "
            "(hint: promote it by editing promotions.yaml, through staging and every gate)"
        )
    ran = [v for v, info in state.versions.items() if has_record(info, "production")]
    if ran and target not in ran:
        raise RollbackError(
            f"{model}: v{target} was never applied to production (it ran: "
            f"{', '.join(f'v{v}' for v in sorted(ran))}; hint: pick one of those, or promote "
            f"v{target} through staging and every gate)"
        )
    if not ran:  # a registry from before apply records: git's history is the evidence
        seen = {v for *_, e in git_events(spec_path, model) if (v := entry_version(e)) is not None}
        if target not in seen:
            raise RollbackError(
                f"{model}: v{target} was never named for production in {spec_path}'s history "
                "and the registry has no apply records (hint: pick a version production ran)"
            )


def commit_rollback(spec_path: Path, result: RollbackResult) -> str:
    """Create a branch and commit the edit; returns the branch name."""
    branch = f"rollback/{result.model}-v{result.to_version}"
    git.commit_on_branch(
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
