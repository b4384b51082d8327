"""Post a terraform plan as one sticky comment per environment on a pull request.

The terraform workflow runs `make tf-plan ENV=<env>` (which writes `plan.txt`) and then
`make tf-plan-comment ENV=<env>`, which calls this script. A hidden marker per environment lets
each new push update the same comment instead of adding another one.

Environment: GITHUB_TOKEN (pull-requests: write), GITHUB_REPOSITORY, PR_NUMBER (or the pull
request in GITHUB_EVENT_PATH), optionally GITHUB_API_URL, GITHUB_SERVER_URL, GITHUB_RUN_ID and
PR_HEAD_SHA. Standard library only, so the workflow needs no `make install` for it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# GitHub refuses comment bodies over 65,536 characters; keep room for the frame.
MAX_PLAN_CHARS = 60_000
SUMMARY_RE = re.compile(
    r"^(Plan: \d+ to add, \d+ to change, \d+ to destroy\.|No changes\..*"
    r"|Changes to Outputs:)$",
    re.MULTILINE,
)


class CommentError(RuntimeError):
    """The comment could not be built or posted; the message says why."""


def marker(env: str) -> str:
    """Hidden HTML comment that identifies the sticky comment of one environment."""
    return f"<!-- terraform-plan:{env} -->"


def summarize(plan: str) -> str:
    """The line a reviewer reads first: the plan's own summary, or a notice when there is none."""
    match = SUMMARY_RE.search(plan)
    if match is None:
        return "No plan summary found (did the plan fail? see the workflow log)."
    if match.group(1) == "Changes to Outputs:":
        return "Only outputs change."
    return match.group(1)


def truncate(plan: str, limit: int = MAX_PLAN_CHARS) -> str:
    """Keep the end of an oversized plan: the summary and the last resources are there."""
    if len(plan) <= limit:
        return plan
    dropped = len(plan) - limit
    return f"... ({dropped} characters cut; the full plan is in the workflow log)\n" + plan[-limit:]


def build_body(env: str, plan: str, run_url: str | None, sha: str | None) -> str:
    """Markdown body of the sticky comment for one environment."""
    summary = summarize(plan)
    facts = [f"environment `{env}`"]
    if sha:
        facts.append(f"commit `{sha[:12]}`")
    if run_url:
        facts.append(f"[workflow run]({run_url})")
    # A fence longer than any backtick run in the plan keeps the plan from closing it early.
    longest = max((len(m) for m in re.findall(r"`+", plan)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join(
        [
            marker(env),
            f"### Terraform plan: {env}",
            "",
            f"**{summary}**",
            "",
            " · ".join(facts),
            "",
            "<details><summary>Show plan</summary>",
            "",
            f"{fence}text",
            truncate(plan.rstrip()),
            fence,
            "",
            "</details>",
        ]
    )


class GitHub:
    """The three issue-comment calls of the GitHub REST API this script needs."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        parsed = urllib.parse.urlparse(api_url)
        if parsed.scheme != "https" and parsed.hostname not in {"127.0.0.1", "localhost"}:
            raise CommentError(f"GITHUB_API_URL must be https: {api_url}")
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.token = token

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            f"{self.api_url}{path}",
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "credit-risk-gitops-tf-plan-comment",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise CommentError(f"GitHub API {method} {path}: HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise CommentError(f"GitHub API {method} {path}: {exc.reason}") from exc

    def find_comment(self, pr: int, needle: str) -> int | None:
        """ID of the first comment on the pull request whose body contains needle."""
        page = 1
        while True:
            comments = self._request(
                "GET", f"/repos/{self.repository}/issues/{pr}/comments?per_page=100&page={page}"
            )
            for comment in comments:
                if needle in (comment.get("body") or ""):
                    return int(comment["id"])
            if len(comments) < 100:
                return None
            page += 1

    def upsert(self, pr: int, env: str, body: str) -> str:
        """Update the environment's sticky comment, or create it; returns its URL."""
        existing = self.find_comment(pr, marker(env))
        if existing is None:
            result = self._request(
                "POST", f"/repos/{self.repository}/issues/{pr}/comments", {"body": body}
            )
        else:
            result = self._request(
                "PATCH", f"/repos/{self.repository}/issues/comments/{existing}", {"body": body}
            )
        return str(result.get("html_url", ""))


def pull_request_number(explicit: str | None) -> int:
    """PR number from --pr / PR_NUMBER, else from the pull_request event payload."""
    value = explicit or os.environ.get("PR_NUMBER")
    if not value and (event_path := os.environ.get("GITHUB_EVENT_PATH")):
        event = json.loads(Path(event_path).read_text())
        value = str((event.get("pull_request") or {}).get("number") or "")
    if not value or not value.isdigit():
        raise CommentError("no pull request number: pass --pr or set PR_NUMBER")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    """Entry point: build the body from the plan file and post it (or print it with --dry-run)."""
    parser = argparse.ArgumentParser(description="Post a terraform plan as a sticky PR comment.")
    parser.add_argument("--env", required=True, help="environment name (staging, production)")
    parser.add_argument("--plan-file", required=True, type=Path, help="output of terraform show")
    parser.add_argument("--pr", help="pull request number (default: PR_NUMBER or the event)")
    parser.add_argument("--dry-run", action="store_true", help="print the body, post nothing")
    args = parser.parse_args(argv)

    try:
        if not args.plan_file.is_file():
            raise CommentError(f"plan file not found: {args.plan_file} (run make tf-plan first)")
        plan = args.plan_file.read_text(errors="replace")
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        run_id = os.environ.get("GITHUB_RUN_ID")
        run_url = f"{server}/{repository}/actions/runs/{run_id}" if run_id and repository else None
        body = build_body(args.env, plan, run_url, os.environ.get("PR_HEAD_SHA"))
        if args.dry_run:
            print(body)
            return 0
        token = os.environ.get("GITHUB_TOKEN")
        if not token:
            raise CommentError("GITHUB_TOKEN is not set")
        if not repository:
            raise CommentError("GITHUB_REPOSITORY is not set (owner/name)")
        api = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), repository, token)
        url = api.upsert(pull_request_number(args.pr), args.env, body)
    except CommentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"plan comment for {args.env}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
