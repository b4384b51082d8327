"""Which commit produced something: from GitHub Actions' variables or the local checkout."""

from __future__ import annotations

import os
import subprocess


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_sha() -> str:
    """The commit being built: `GITHUB_SHA` in Actions, else HEAD, else 'unknown'."""
    return os.environ.get("GITHUB_SHA") or _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> bool:
    """True when the working tree has uncommitted changes (a run not reproducible from git)."""
    if os.environ.get("GITHUB_SHA"):
        return False
    status = _git("status", "--porcelain", "--untracked-files=no")
    return bool(status)
