"""`history MODEL`: the promotion timeline, from git (the audit log) joined with registry tags.

Each commit that changed `promotions.yaml` (`git log --follow`) gives when, who and from → to in
git; the version's apply records (`ml.promotions.records`) give when it reached staging/production,
by whom and from which PR/run. A record belongs to the change in effect at the commit it applied:
CD applies the merge commit, while git log shows the commit that changed the file. A re-sync
(apply restoring git's version after the alias was moved outside git) is listed under its change
as a repair, never as a promotion. The timeline follows production's version (`version:`, or
`environments.production`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ml.adapters import git
from ml.errors import GitHubError
from ml.promotions.records import records
from ml.registry import ModelState

_PR_RE = re.compile(r"#(\d+)")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,64}")


@dataclass(frozen=True)
class Event:
    """One change of a model's desired version in git, with the apply of it to each environment."""

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
    data: str | None = None  # the version's DVC data: "md5 <12> <path>" (ml.lineage tags)
    repairs: tuple[dict[str, Any], ...] = ()


def _git(repo: Path, *args: str) -> str:
    return git.git(*args, cwd=repo)


def _entry_at(repo: Path, commit: str, path: str, model: str) -> dict[str, Any] | None:
    try:
        text = _git(repo, "show", f"{commit}:{path}")
        data = YAML(typ="safe").load(text) or {}
        entry = (data.get("models") or {}).get(model)
    except Exception:  # an unparsable revision is shown as unknown, not fatal
        return None
    return entry if isinstance(entry, dict) else None


def entry_version(entry: dict[str, Any] | None, env: str = "production") -> int | None:
    """The version an entry of any revision names for `env` (either form), or None."""
    if not entry:
        return None
    pins = entry.get("environments")
    value = pins.get(env) if isinstance(pins, dict) else entry.get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _locate(spec_path: Path) -> tuple[Path, str]:
    """The repository holding the spec, and the spec's path inside it."""
    spec_path = spec_path.resolve()
    repo = Path(_git(spec_path.parent, "rev-parse", "--show-toplevel").strip())
    return repo, spec_path.relative_to(repo).as_posix()


def git_events(spec_path: Path, model: str) -> list[tuple[str, str, str, str, dict | None]]:
    """(commit, ISO time, author, subject, entry) per commit touching the file, oldest first."""
    return _log(*_locate(spec_path), model)


def _log(repo: Path, rel: str, model: str) -> list[tuple[str, str, str, str, dict | None]]:
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


def _time(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Matcher:
    """Finds the event an apply record carried out, for the events of one timeline."""

    def __init__(self, repo: Path, rel: str, events: list[Event], in_effect: dict[str, int]):
        self.repo, self.rel, self.events, self.in_effect = repo, rel, events, in_effect
        self._spec_commits: dict[str, str | None] = {}

    def _spec_commit(self, sha: str) -> str | None:
        """The last commit that changed the spec as of `sha`; None when git does not know it."""
        if sha in self.in_effect:
            return sha
        if not _COMMIT_RE.fullmatch(sha):  # free text from --git-sha: never handed to git
            return None
        if sha not in self._spec_commits:
            try:
                out = _git(self.repo, "log", "-1", "--format=%H", sha, "--", self.rel)
            except GitHubError:  # not in this clone
                out = ""
            self._spec_commits[sha] = out.strip() or None
        return self._spec_commits[sha]

    def event_of(self, record: dict[str, Any], version: int) -> tuple[int, bool] | None:
        """(event index, matched by commit) for a record found on `version`."""
        sha = record.get("git_sha")
        index = self.in_effect.get(self._spec_commit(sha) or "") if isinstance(sha, str) else None
        if index is not None and self.events[index].to_version == version:
            return index, True
        # The commit is unknown here (free text, not in this clone) or names another change: take
        # the latest change to this version made before the apply, else the latest.
        candidates = [i for i, e in enumerate(self.events) if e.to_version == version]
        applied = _time(record.get("time"))
        if applied is not None:
            before = [
                i for i in candidates if datetime.fromisoformat(self.events[i].when) <= applied
            ]
            candidates = before or candidates
        return (candidates[-1], False) if candidates else None


def _applies(matcher: _Matcher, state: ModelState | None, env: str) -> dict[int, dict[str, Any]]:
    """Event index → its apply to `env`: a record matched by commit first, then the earliest."""
    found: dict[int, list[tuple[bool, str, dict[str, Any]]]] = {}
    for info in state.versions.values() if state else []:
        for record in records(info, env):
            if record.get("resync"):
                continue  # a repair, listed apart
            match = matcher.event_of(record, info.version)
            if match is not None:
                index, by_commit = match
                found.setdefault(index, []).append(
                    (not by_commit, str(record.get("time", "")), record)
                )
    return {index: min(matches, key=lambda m: m[:2])[2] for index, matches in found.items()}


def _repairs(matcher: _Matcher, state: ModelState | None) -> dict[int, list[dict[str, Any]]]:
    """Event index → the re-sync records (repairs) made while that change was in force."""
    out: dict[int, list[dict[str, Any]]] = {}
    for info in state.versions.values() if state else []:
        for env in ("staging", "production"):
            for record in records(info, env):
                if not record.get("resync"):
                    continue
                match = matcher.event_of(record, info.version)
                index = match[0] if match else len(matcher.events) - 1
                if index >= 0:
                    out.setdefault(index, []).append(record)
    return {i: sorted(r, key=lambda x: str(x.get("time", ""))) for i, r in out.items()}


def history(spec_path: Path, model: str, state: ModelState | None) -> list[Event]:
    """Timeline of desired-version changes for `model`, oldest first."""
    repo, rel = _locate(spec_path)
    events: list[Event] = []
    in_effect: dict[str, int] = {}  # commit touching the spec → index of the change in force
    previous: int | None = None
    peak: int | None = None
    for sha, when, author, subject, entry in _log(repo, rel, model):
        version = entry_version(entry)
        if version == previous:
            if events:
                in_effect[sha] = len(events) - 1
            continue
        rollback = bool(entry and entry.get("rollback")) or (
            version is not None and peak is not None and version < peak
        )
        pr_match = _PR_RE.search(subject)
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
                pr=pr_match.group(1) if pr_match else None,
                staging=None,
                production=None,
            )
        )
        in_effect[sha] = len(events) - 1
        previous = version
        if version is not None:
            peak = max(peak or version, version)

    matcher = _Matcher(repo, rel, events, in_effect)
    staging = _applies(matcher, state, "staging")
    production = _applies(matcher, state, "production")
    repairs = _repairs(matcher, state)
    return [
        replace(
            event,
            staging=staging.get(i),
            production=production.get(i),
            pr=(production.get(i) or {}).get("pr") or event.pr,
            data=_data_version(state, event.to_version),
            repairs=tuple(repairs.get(i, ())),
        )
        for i, event in enumerate(events)
    ]


def _data_version(state: ModelState | None, version: int | None) -> str | None:
    """The DVC data a version was trained on, from its lineage tags; None without them."""
    info = state.versions.get(version) if state and version is not None else None
    md5 = info.tags.get("dvc_data_md5") if info else None
    if not info or not md5:
        return None
    return f"md5 {md5[:12]} {info.tags.get('dvc_data_path', '')}".strip()


def events_json(events: list[Event]) -> str:
    """Machine-readable timeline."""
    return json.dumps([asdict(e) for e in events], indent=2)
