"""Render a terraform plan (`terraform show -no-color` output) as the markdown of its PR comment.

`mlops pr terraform-plan` writes it; `mlops pr comment` posts it (one sticky comment per
environment, also the job summary). The summary line comes first; the plan is folded, fenced so no
backtick run in it can close the fence, and cut from the front when it would exceed GitHub's
comment limit.
"""

from __future__ import annotations

import re

# GitHub refuses comment bodies over 65,536 characters; keep room for the frame.
MAX_PLAN_CHARS = 60_000
SUMMARY_RE = re.compile(
    r"^(Plan: \d+ to add, \d+ to change, \d+ to destroy\.|No changes\..*"
    r"|Changes to Outputs:)$",
    re.MULTILINE,
)


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


def render(env: str, plan: str, sha: str | None) -> str:
    """Markdown for one environment's plan (`mlops pr comment` adds marker, title, run link)."""
    summary = summarize(plan)
    facts = [f"environment `{env}`"]
    if sha:
        facts.append(f"commit `{sha[:12]}`")
    # A fence longer than any backtick run in the plan keeps the plan from closing it early.
    longest = max((len(m) for m in re.findall(r"`+", plan)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join(
        [
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
