"""One pull request comment per subject, updated in place (a "sticky" comment), and the job
summary: what `mlops pr comment` posts. Bodies are cut to GitHub's limit and have credentials
masked (serve.redaction: a PR comment is readable by everyone with access)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ml.adapters.actions import pr_number, run_url
from ml.adapters.github import GitHubClient

MAX_COMMENT = 65_000  # GitHub refuses comment bodies over 65,536 characters


def marker_line(marker: str) -> str:
    """The hidden marker that identifies a sticky comment."""
    return f"<!-- sticky:{marker} -->"


def comment_body(marker: str, title: str, text: str, url: str | None = None) -> str:
    """Markdown body: marker, title, the text (cut to GitHub's limit), a link to the run;
    credentials masked."""
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
    return f"{client.upsert_comment(pr, marker_line(marker), body)} the sticky comment on PR #{pr}"
