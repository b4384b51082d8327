"""Create or update ONE sticky pull request comment (and the job summary) from a markdown file.

A hidden HTML marker (`<!-- sticky:<marker> -->`) identifies the comment, so each push updates
it instead of adding another. With `--if-changed PATH` (repeatable) nothing is posted unless
the pull request changes one of those paths (asked from the REST API, so a shallow checkout
is enough).

Environment: GITHUB_TOKEN (pull-requests: write), GITHUB_REPOSITORY, PR_NUMBER (or the pull
request in GITHUB_EVENT_PATH), optional GITHUB_API_URL, GITHUB_STEP_SUMMARY, GITHUB_SERVER_URL,
GITHUB_RUN_ID. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAX_BODY = 65_000  # GitHub refuses comment bodies over 65,536 characters


class CommentError(RuntimeError):
    """The comment could not be built or posted; the message says why."""


def marker_line(marker: str) -> str:
    """The hidden marker that identifies the sticky comment."""
    return f"<!-- sticky:{marker} -->"


def build_body(marker: str, title: str, text: str, run_url: str | None = None) -> str:
    """Markdown body: marker, title, the text (cut to GitHub's limit), a link to the run."""
    footer = f"\n\n<sub>[workflow run]({run_url})</sub>" if run_url else ""
    head = f"{marker_line(marker)}\n### {title}\n\n"
    room = MAX_BODY - len(head) - len(footer)
    if len(text) > room:
        text = text[: room - 60] + "\n\n... (cut; the full text is in the workflow log)"
    return head + text + footer


class GitHub:
    """The four REST calls this script needs, over urllib."""

    def __init__(self, token: str, repo: str, api: str = "https://api.github.com") -> None:
        self.token = token
        self.repo = repo
        self.api = api.rstrip("/")

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One JSON request; raise `CommentError` with GitHub's message on an HTTP error."""
        url = path if path.startswith("http") else f"{self.api}{path}"
        if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
            raise CommentError(f"refusing non-https API URL {url!r}")
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
            detail = exc.read().decode(errors="replace")[:500]
            raise CommentError(f"{method} {url}: HTTP {exc.code}: {detail}") from exc
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


def pr_number(env: dict[str, str]) -> int:
    """PR_NUMBER, or the pull request of the event that started the workflow."""
    if env.get("PR_NUMBER"):
        return int(env["PR_NUMBER"])
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).exists():
        event = json.loads(Path(event_path).read_text())
        number = (event.get("pull_request") or {}).get("number")
        if number:
            return int(number)
    raise CommentError("no pull request: set PR_NUMBER (or run on a pull_request event)")


def touches(changed: Iterable[str], watched: Iterable[str]) -> bool:
    """True when a changed path is a watched file or lies under a watched directory."""
    prefixes = [w.rstrip("/") for w in watched]
    return any(c == p or c.startswith(p + "/") for c in changed for p in prefixes)


def run(argv: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    """Post (or skip); return what happened, for the log."""
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marker", required=True, help="identifies the sticky comment")
    parser.add_argument("--body-file", required=True, type=Path, help="markdown to post")
    parser.add_argument("--title", default="", help="heading above the markdown")
    parser.add_argument("--if-changed", action="append", default=[], help="watched path")
    args = parser.parse_args(argv)

    token, repo = env.get("GITHUB_TOKEN"), env.get("GITHUB_REPOSITORY")
    if not token or not repo:
        raise CommentError("GITHUB_TOKEN and GITHUB_REPOSITORY must be set")
    gh = GitHub(token, repo, env.get("GITHUB_API_URL", "https://api.github.com"))
    pr = pr_number(env)
    if args.if_changed and not touches(gh.changed_files(pr), args.if_changed):
        return f"PR #{pr} changes none of {args.if_changed}: no comment"
    if not args.body_file.exists():
        raise CommentError(f"{args.body_file} not found (did the plan step run?)")
    run_url = None
    if env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        run_url = f"{server}/{repo}/actions/runs/{env['GITHUB_RUN_ID']}"
    body = build_body(args.marker, args.title or args.marker, args.body_file.read_text(), run_url)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(body + "\n")
    return f"{gh.upsert_comment(pr, args.marker, body)} the sticky comment on PR #{pr}"


def main() -> int:
    """Entry point: one line of outcome, or one error line and exit 1."""
    try:
        print(run())
    except CommentError as exc:
        print(f"::error title=pr comment::{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
