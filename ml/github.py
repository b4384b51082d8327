"""Everything that talks to git, the GitHub CLI or the GitHub REST API, and to a workflow's
step outputs and job summary: one place, so verbs never build these commands themselves.

Every failure raises `GitHubError` (exit 12) naming the command, never a traceback. Standard
library only: the CLI imports this module on its fast path.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ml.errors import GitHubError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
MAX_COMMENT = 65_000  # GitHub refuses comment bodies over 65,536 characters


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


def git(*args: str, cwd: Path | None = None) -> str:
    """`git ARGS` in `cwd`; raises `GitHubError`."""
    return run(["git", *args], cwd=cwd)


def _git_or_none(*args: str) -> str | None:
    try:
        return git(*args)
    except GitHubError:
        return None


def git_sha(env: Mapping[str, str] | None = None) -> str:
    """The commit being built: `GITHUB_SHA` in Actions, else HEAD, else 'unknown'."""
    env = os.environ if env is None else env
    return env.get("GITHUB_SHA") or _git_or_none("rev-parse", "HEAD") or "unknown"


def git_dirty() -> bool:
    """True when the working tree has uncommitted changes (a run not reproducible from git)."""
    if os.environ.get("GITHUB_SHA"):
        return False
    return bool(_git_or_none("status", "--porcelain", "--untracked-files=no"))


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


def gh_path() -> str:
    """The GitHub CLI's path; `GitHubError` (exit 12) naming how to get it when missing."""
    return _gh()


def _gh() -> str:
    found = shutil.which("gh")
    if found is None:
        raise GitHubError(
            "`gh` (GitHub CLI) is not installed (hint: https://cli.github.com, or push the "
            "branch and open the pull request by hand)"
        )
    return found


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


def push_and_open_pr(repo: Path, branch: str, title: str, body: str, *, push: bool = True) -> str:
    """Push `branch` to origin and open a pull request with `gh`; return its URL. Never merges.

    In Actions, `gh auth setup-git` lets git push with the token gh holds (GH_TOKEN). With
    `push=False` the branch is on origin already (a retried step) and only the PR is opened.
    """
    gh = _gh()
    if in_actions():
        run([gh, "auth", "setup-git"], cwd=repo)
    if push:
        git("push", "-u", "origin", branch, cwd=repo)
    from serve.redaction import redact

    args = ["pr", "create", "--head", branch, "--title", redact(title), "--body", redact(body)]
    return run([gh, *args], cwd=repo)


def remote_file(repo: Path, branch: str, path: str) -> str | None:
    """`path` as it is on origin's `branch`, or None when origin has no such branch."""
    if not _git_or_none("-C", str(repo), "ls-remote", "--exit-code", "--heads", "origin", branch):
        return None
    git("fetch", "--quiet", "--depth", "1", "origin", f"{branch}:refs/remotes/origin/{branch}",
        cwd=repo)  # fmt: skip
    return git("show", f"origin/{branch}:{path}", cwd=repo)


# --- pull request comments over the REST API ------------------------------------------------


def marker_line(marker: str) -> str:
    """The hidden marker that identifies a sticky comment."""
    return f"<!-- sticky:{marker} -->"


def comment_body(marker: str, title: str, text: str, url: str | None = None) -> str:
    """Markdown body: marker, title, the text (cut to GitHub's limit), a link to the run;
    credentials masked (serve.redaction: a PR comment is readable by everyone with access)."""
    from serve.redaction import redact

    text, title = redact(text), redact(title)
    footer = f"\n\n<sub>[workflow run]({url})</sub>" if url else ""
    head = f"{marker_line(marker)}\n### {title}\n\n"
    room = MAX_COMMENT - len(head) - len(footer)
    if len(text) > room:
        text = text[: room - 60] + "\n\n... (cut; the full text is in the workflow log)"
    return head + text + footer


def touches(changed: Iterable[str], watched: Iterable[str]) -> bool:
    """True when a changed path is a watched file or lies under a watched directory."""
    prefixes = [w.rstrip("/") for w in watched]
    return any(c == p or c.startswith(p + "/") for c in changed for p in prefixes)


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


class GitHubClient:
    """The few REST calls the workflows need (urllib: no dependency, no import cost)."""

    def __init__(self, token: str, repo: str, api: str = "https://api.github.com") -> None:
        self.token = token
        self.repo = repo
        self.api = api.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubClient:
        """GITHUB_TOKEN, GITHUB_REPOSITORY and optional GITHUB_API_URL."""
        env = os.environ if env is None else env
        token, repo = env.get("GITHUB_TOKEN"), env.get("GITHUB_REPOSITORY")
        if not token or not repo:
            raise GitHubError("GITHUB_TOKEN and GITHUB_REPOSITORY must be set")
        return cls(token, repo, env.get("GITHUB_API_URL", "https://api.github.com"))

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One JSON request; `GitHubError` with GitHub's message on an HTTP error."""
        url = path if path.startswith("http") else f"{self.api}{path}"
        if not url.startswith(("https://", "http://127.0.0.1")):
            raise GitHubError(f"refusing a non-https API URL {url[:80]!r}")
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                body = resp.read()
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode(errors="replace").split())[:300]
            raise GitHubError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise GitHubError(f"{method} {url}: {exc}") from None
        return json.loads(body) if body else None

    def paginate(self, path: str) -> Iterable[dict[str, Any]]:
        """Every item of a list endpoint (100 per page)."""
        page = 1
        while True:
            sep = "&" if "?" in path else "?"
            items = self.request("GET", f"{path}{sep}per_page=100&page={page}") or []
            yield from items
            if len(items) < 100:
                return
            page += 1

    def changed_files(self, pr: int) -> list[str]:
        """Paths the pull request touches (old and new names of renames)."""
        files: list[str] = []
        for item in self.paginate(f"/repos/{self.repo}/pulls/{pr}/files"):
            files.append(item["filename"])
            if item.get("previous_filename"):
                files.append(item["previous_filename"])
        return files

    def upsert_comment(self, pr: int, marker: str, body: str) -> str:
        """Update the comment carrying `marker`, or create it; return "created" or "updated"."""
        needle = marker_line(marker)
        for comment in self.paginate(f"/repos/{self.repo}/issues/{pr}/comments"):
            if needle in (comment.get("body") or ""):
                self.request("PATCH", comment["url"], {"body": body})
                return "updated"
        self.request("POST", f"/repos/{self.repo}/issues/{pr}/comments", {"body": body})
        return "created"


def sticky_comment(
    marker: str,
    title: str,
    text: str,
    *,
    if_changed: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> str:
    """Post or update ONE pull request comment (and the job summary); say what happened.

    With `if_changed`, nothing is posted unless the pull request touches one of those paths
    (asked from the REST API, so a shallow checkout is enough).
    """
    env = os.environ if env is None else env
    client = GitHubClient.from_env(env)
    pr = pr_number(env)
    watched = list(if_changed)
    if watched and not touches(client.changed_files(pr), watched):
        return f"PR #{pr} changes none of {watched}: no comment"
    body = comment_body(marker, title or marker, text, run_url(env))
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as out:
            out.write(body + "\n")
    return f"{client.upsert_comment(pr, marker, body)} the sticky comment on PR #{pr}"
