"""`rollback MODEL [--to N]`: write the rollback as an edit to `promotions.yaml`.

The target is the version applied to production before the current one (registry tags written by
`apply`; git history when the registry has none). The edit keeps comments and layout (ruamel.yaml
round trip) and sets `rollback: true` plus a note, which makes the waiver of the regression gate
explicit in validate/plan output. Integrity gates, required tags, signature and floors still apply.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from ml.errors import RollbackError
from ml.promotions.history import git_events
from ml.promotions.records import records
from ml.promotions.spec import load_spec
from ml.registry import ModelState


@dataclass(frozen=True)
class RollbackResult:
    """What the edit did."""

    model: str
    from_version: int
    to_version: int
    note: str
    branch: str | None = None
    pr_url: str | None = None


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


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


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
    yaml = _yaml()
    data = yaml.load(spec_path.read_text(encoding="utf-8"))
    node = data["models"][model]
    node["version"] = target
    node["note"] = note
    node["rollback"] = True
    with spec_path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    load_spec(spec_path)  # the edit must still satisfy the contract
    return RollbackResult(model, current, target, note)


def _run(repo: Path, *cmd: str) -> str:
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RollbackError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def commit_rollback(spec_path: Path, result: RollbackResult) -> str:
    """Create a branch and commit the edit; returns the branch name."""
    repo = spec_path.resolve().parent
    branch = f"rollback/{result.model}-v{result.to_version}"
    _run(repo, "git", "checkout", "-b", branch)
    _run(repo, "git", "add", str(spec_path.resolve()))
    _run(
        repo,
        "git",
        "commit",
        "-m",
        f"rollback({result.model}): production v{result.from_version} → v{result.to_version}",
        "-m",
        result.note,
    )
    return branch


def open_pr(spec_path: Path, result: RollbackResult, branch: str) -> str:
    """Push the branch and open the PR with `gh`; a clear error when gh is missing."""
    gh = shutil.which("gh")
    if gh is None:
        raise RollbackError(
            "`gh` (GitHub CLI) is not installed: the branch is committed; push it and open the "
            "PR by hand, or install gh (https://cli.github.com)"
        )
    repo = spec_path.resolve().parent
    _run(repo, "git", "push", "-u", "origin", branch)
    return _run(
        repo,
        gh,
        "pr",
        "create",
        "--head",
        branch,
        "--title",
        f"Rollback {result.model} to v{result.to_version}",
        "--body",
        f"{result.note}\n\nWritten by `mlops rollback`. The regression gate is waived "
        "(`rollback: true`); integrity gates still apply.",
    )
