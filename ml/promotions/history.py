"""`history MODEL`: the promotion timeline, from git (the audit log) joined with registry tags.

Each commit that changed `promotions.yaml` (`git log --follow`) gives when, who and from → to in
git; the version's `promotion.<env>` tags give when it reached staging/production, by whom and
from which PR/run.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ml.errors import MlopsError
from ml.promotions.apply import version_tag
from ml.registry import ModelState

_PR_RE = re.compile(r"#(\d+)")


@dataclass(frozen=True)
class Event:
    """One change of a model's desired version in git, with what the registry recorded."""

    commit: str
    when: str
    author: str
    subject: str
    from_version: int | None
    to_version: int | None
    rollback: bool
    note: str | None
    pr: str | None
    staging: dict[str, Any] | None
    production: dict[str, Any] | None


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
        )
    except OSError as exc:
        raise MlopsError(f"git is not available: {exc}") from None
    if done.returncode != 0:
        raise MlopsError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def _entry_at(repo: Path, commit: str, path: str, model: str) -> dict[str, Any] | None:
    try:
        text = _git(repo, "show", f"{commit}:{path}")
        data = YAML(typ="safe").load(text) or {}
        entry = (data.get("models") or {}).get(model)
    except Exception:  # an unparsable revision is shown as unknown, not fatal
        return None
    return entry if isinstance(entry, dict) else None


def git_events(spec_path: Path, model: str) -> list[tuple[str, str, str, str, dict | None]]:
    """(commit, ISO time, author, subject, entry) per commit touching the file, oldest first."""
    spec_path = spec_path.resolve()
    repo = Path(_git(spec_path.parent, "rev-parse", "--show-toplevel").strip())
    rel = spec_path.relative_to(repo).as_posix()
    out = _git(
        repo, "log", "--follow", "--name-only", "--format=%x1e%H%x1f%aI%x1f%an%x1f%s", "--", rel
    )
    rows = []
    for block in out.split("\x1e"):
        if not block.strip():
            continue
        header, _, names = block.partition("\n")
        sha, when, author, subject = header.split("\x1f", 3)
        path_then = next((n for n in names.split("\n") if n.strip()), rel)
        rows.append((sha, when, author, subject, _entry_at(repo, sha, path_then, model)))
    rows.reverse()
    return rows


def _record(state: ModelState | None, version: int | None, env: str) -> dict[str, Any] | None:
    if state is None or version is None or version not in state.versions:
        return None
    raw = state.versions[version].tags.get(version_tag(env))
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"raw": raw}


def history(spec_path: Path, model: str, state: ModelState | None) -> list[Event]:
    """Timeline of desired-version changes for `model`, oldest first."""
    events: list[Event] = []
    previous: int | None = None
    peak: int | None = None
    for sha, when, author, subject, entry in git_events(spec_path, model):
        version = entry.get("version") if entry else None
        version = version if isinstance(version, int) else None
        if version == previous:
            continue
        rollback = bool(entry and entry.get("rollback")) or (
            version is not None and peak is not None and version < peak
        )
        prod = _record(state, version, "production")
        pr_match = _PR_RE.search(subject)
        pr = (prod or {}).get("pr") or (pr_match.group(1) if pr_match else None)
        events.append(
            Event(
                commit=sha[:12],
                when=when,
                author=author,
                subject=subject,
                from_version=previous,
                to_version=version,
                rollback=rollback,
                note=(entry or {}).get("note"),
                pr=pr,
                staging=_record(state, version, "staging"),
                production=prod,
            )
        )
        previous = version
        if version is not None:
            peak = max(peak or version, version)
    return events


def events_json(events: list[Event]) -> str:
    """Machine-readable timeline."""
    return json.dumps([asdict(e) for e in events], indent=2)
