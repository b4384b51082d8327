"""GitHub: its REST API (urllib: no dependency, no import cost) and the GitHub CLI `gh`.

The only module that calls GitHub. `GitHubClient` makes the REST calls a workflow job needs with
its token (comments, changed files, environment protection, artefacts); `Gh` is `gh api` and
`gh secret set` with the logged-in person's rights (bootstrap); `push_and_open_pr` opens a pull
request with `gh`. Every failure raises `GitHubError` (exit 12) naming the call. Standard library
only: the CLI imports this module on its fast path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ml.adapters.actions import in_actions
from ml.adapters.git import git, run
from ml.errors import ConfigError, GitHubError, NotFoundError, one_line

API = "https://api.github.com"


class GitHubClient:
    """The REST calls the workflows need, with a token (GITHUB_TOKEN in a job)."""

    def __init__(self, token: str, repo: str, api: str = API) -> None:
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
        return cls(token, repo, env.get("GITHUB_API_URL", API))

    def _request(self, url: str, method: str, data: bytes | None) -> urllib.request.Request:
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return req

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One JSON request; `GitHubError` with GitHub's message on an HTTP error."""
        url = path if path.startswith("http") else f"{self.api}{path}"
        if not url.startswith(("https://", "http://127.0.0.1")):
            raise GitHubError(f"refusing a non-https API URL {url[:80]!r}")
        data = json.dumps(payload).encode() if payload is not None else None
        try:
            with urllib.request.urlopen(self._request(url, method, data), timeout=30) as resp:  # noqa: S310
                body = resp.read()
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode(errors="replace").split())[:300]
            raise GitHubError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise GitHubError(f"{method} {url}: {exc}") from None
        return json.loads(body) if body else None

    def read(self, path: str) -> tuple[int, Any]:
        """GET `path` under /repos/OWNER/NAME for a check that reports what it finds:
        (HTTP status, parsed JSON or None). Only an unreachable API raises (`ConfigError`: the
        API URL or the network is the job's configuration)."""
        url = f"{self.api}/repos/{self.repo}{path}"
        try:
            with urllib.request.urlopen(self._request(url, "GET", None), timeout=30) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ConfigError(f"GitHub API {self.api} unreachable: {exc}") from exc

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

    def upsert_comment(self, pr: int, needle: str, body: str) -> str:
        """Update the comment containing `needle`, or create it; "created" or "updated"."""
        for comment in self.paginate(f"/repos/{self.repo}/issues/{pr}/comments"):
            if needle in (comment.get("body") or ""):
                self.request("PATCH", comment["url"], {"body": body})
                return "updated"
        self.request("POST", f"/repos/{self.repo}/issues/{pr}/comments", {"body": body})
        return "created"


def client_from_env(
    environ: Mapping[str, str] | None = None, repo: str | None = None
) -> GitHubClient | None:
    """A client from GITHUB_TOKEN/GH_TOKEN and GITHUB_REPOSITORY (or `repo`), or None without a
    token (a check that can run without GitHub then skips what needs it)."""
    env = os.environ if environ is None else environ
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    repo = repo or env.get("GITHUB_REPOSITORY")
    if not token:
        return None
    if not repo:
        raise ConfigError("preflight needs the repository: --repo OWNER/NAME or GITHUB_REPOSITORY")
    return GitHubClient(token, repo, env.get("GITHUB_API_URL") or API)


# --- the GitHub CLI ----------------------------------------------------------------------------


def gh_path(
    hint: str = "push the branch and open the pull request by hand",
) -> str:
    """The GitHub CLI's path; `GitHubError` (exit 12) naming how to get it, or `hint` (what to
    do without it), when missing."""
    found = shutil.which("gh")
    if found is None:
        raise GitHubError(
            f"the GitHub CLI `gh` is not installed: install it (https://cli.github.com), or {hint}"
        )
    return found


def push_and_open_pr(repo: Path, branch: str, title: str, body: str, *, push: bool = True) -> str:
    """Push `branch` to origin and open a pull request with `gh`; return its URL. Never merges.

    In Actions, `gh auth setup-git` lets git push with the token gh holds (GH_TOKEN). With
    `push=False` the branch is on origin already (a retried step) and only the PR is opened.
    """
    gh = gh_path()
    if in_actions():
        run([gh, "auth", "setup-git"], cwd=repo)
    if push:
        git("push", "-u", "origin", branch, cwd=repo)
    from serve.redaction import redact

    args = ["pr", "create", "--head", branch, "--title", redact(title), "--body", redact(body)]
    return run([gh, *args], cwd=repo)


class Gh:
    """`gh api` and `gh secret set` as the person logged in to `gh` (a repository admin)."""

    def __init__(self, repo: str, gh: str) -> None:
        self.repo = repo
        self.gh = gh

    @classmethod
    def installed(cls, repo: str) -> Gh:
        """The CLI on PATH; `GitHubError` saying how to get it (or to use --dry-run) when absent."""
        hint = "run with --dry-run and apply the printed calls yourself (`gh auth login` as a "
        hint += "repository admin before a real run)"
        return cls(repo, gh_path(hint))

    def api(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One REST call through `gh api`; the parsed JSON answer; NotFoundError on 404."""
        cmd = [
            self.gh,
            "api",
            "--method",
            method,
            path,
            "-H",
            "Accept: application/vnd.github+json",
        ]
        if body is not None:
            cmd += ["--input", "-"]
        done = subprocess.run(
            cmd,
            input=json.dumps(body) if body is not None else None,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            if "HTTP 404" in done.stderr:
                raise NotFoundError(path)
            raise GitHubError(
                f"gh api --method {method} {path} failed: {one_line(done.stderr or done.stdout)}"
            )
        return json.loads(done.stdout) if done.stdout.strip() else None

    def set_secret(self, name: str, value: str, environment: str | None) -> None:
        """`gh secret set NAME --repo R [--env E]`, value on stdin (never in argv or logs)."""
        cmd = [self.gh, "secret", "set", name, "--repo", self.repo]
        if environment:
            cmd += ["--env", environment]
        done = subprocess.run(
            cmd, input=value, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise GitHubError(f"gh secret set {name} failed: {one_line(done.stderr)}")
