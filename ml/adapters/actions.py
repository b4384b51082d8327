"""The GitHub Actions runner: who and what runs the job (its environment), the step outputs
(`GITHUB_OUTPUT`) and the job summary (`GITHUB_STEP_SUMMARY`). Outside Actions every writer is a
no-op, so a verb runs the same on a laptop. Standard library only (the CLI's fast path)."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ml.errors import GitHubError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job."""
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def run_url(env: Mapping[str, str] | None = None) -> str | None:
    """URL of the workflow run from GITHUB_SERVER_URL/REPOSITORY/RUN_ID, or None outside one."""
    env = os.environ if env is None else env
    if not (env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY")):
        return None
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"


def actor(env: Mapping[str, str] | None = None) -> str:
    """Who acts: GITHUB_ACTOR in Actions, else the local user."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTOR"):
        return env["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def write_outputs(**values: str) -> None:
    """Step outputs (`GITHUB_OUTPUT`); a no-op outside Actions. Multi-line values are fenced."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for key, value in values.items():
            if "\n" in value:
                fence = f"EOF_{os.urandom(8).hex()}"
                out.write(f"{key}<<{fence}\n{value}\n{fence}\n")
            else:
                out.write(f"{key}={value}\n")


def append_summary(markdown: str) -> None:
    """Append to the job summary (`GITHUB_STEP_SUMMARY`); a no-op outside Actions."""
    from serve.redaction import redact

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(redact(markdown.rstrip("\n")) + "\n")


def pr_number(env: Mapping[str, str] | None = None) -> int:
    """PR_NUMBER, or the pull request of the event that started the workflow."""
    env = os.environ if env is None else env
    if env.get("PR_NUMBER"):
        try:
            return int(env["PR_NUMBER"])
        except ValueError:
            raise GitHubError(f"PR_NUMBER is not a number: {env['PR_NUMBER'][:40]!r}") from None
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        number = (event.get("pull_request") or {}).get("number")
        if number:
            return int(number)
    raise GitHubError("no pull request: set PR_NUMBER (or run on a pull_request event)")
