"""The git CLI: the only module that runs `git` (and the process runner `gh` shares).

Every failure raises `GitHubError` (exit 12) naming the command, never a traceback. Standard
library only: the CLI imports this module on its fast path.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from ml.adapters.actions import BOT_EMAIL, BOT_NAME, in_actions
from ml.errors import GitHubError


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    """Run one command; its stdout, or `GitHubError` with the end of its stderr."""
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitHubError(f"{' '.join(cmd[:3])} could not run: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-3:] or [f"exit {done.returncode}"]
        raise GitHubError(f"{' '.join(cmd[:3])} failed: {' / '.join(detail)}")
    return done.stdout.strip()


def git(*args: str, cwd: Path | None = None, timeout: float = 600) -> str:
    """`git ARGS` in `cwd`; raises `GitHubError`."""
    return run(["git", *args], cwd=cwd, timeout=timeout)


def _git_or_none(*args: str) -> str | None:
    try:
        return git(*args)
    except GitHubError:
        return None


def sha(env: Mapping[str, str] | None = None) -> str:
    """The commit being built: `GITHUB_SHA` in Actions, else HEAD, else 'unknown'."""
    env = os.environ if env is None else env
    return env.get("GITHUB_SHA") or _git_or_none("rev-parse", "HEAD") or "unknown"


def dirty() -> bool:
    """True when the working tree has uncommitted changes (a run not reproducible from git)."""
    if os.environ.get("GITHUB_SHA"):
        return False
    return bool(_git_or_none("status", "--porcelain", "--untracked-files=no"))


def rev_parse(spec: str, cwd: Path | None = None) -> str:
    """The object id `spec` names (a commit, or a tree/blob as `REV:PATH`); `GitHubError`."""
    return git("rev-parse", spec, cwd=cwd, timeout=30)


def remote_url(remote: str, cwd: Path | None = None) -> str:
    """The URL of remote `remote` of the checkout in `cwd`, or `remote` itself when it is no
    remote's name (a URL or a path already)."""
    names = _git_or_none("-C", str(cwd or Path.cwd()), "remote")
    if names and remote in names.split():
        return git("remote", "get-url", remote, cwd=cwd)
    return remote


def clone(url: str, dst: Path) -> None:
    """A shallow clone of `url`'s default branch into `dst` (history is not needed to branch)."""
    git("clone", "--quiet", "--depth", "1", "--no-tags", url, str(dst))


def commit_on_branch(repo: Path, branch: str, paths: Iterable[Path], message: str) -> None:
    """Create `branch` from HEAD and commit `paths` on it (the bot's identity in Actions)."""
    git("switch", "-c", branch, cwd=repo)
    git("add", "--", *(str(p) for p in paths), cwd=repo)
    identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    git(*(identity if in_actions() else []), "commit", "-m", message, cwd=repo)


def remote_file(repo: Path, branch: str, path: str) -> str | None:
    """`path` as it is on origin's `branch`, or None when origin has no such branch."""
    if not _git_or_none("-C", str(repo), "ls-remote", "--exit-code", "--heads", "origin", branch):
        return None
    git("fetch", "--quiet", "--depth", "1", "origin", f"{branch}:refs/remotes/origin/{branch}",
        cwd=repo)  # fmt: skip
    return git("show", f"origin/{branch}:{path}", cwd=repo)
