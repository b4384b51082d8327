"""What a production approver sees and what is kept of the approval.

`summary_markdown` renders the release a production job is about to deploy (id, commit, image
digests, model versions with their holdout metrics against the gates of the release's commit,
the scan, the staging verification, the record's digest); CD writes it to the job summary of the
job that runs before the `production` environment's approval, so the approver reads what the
approval ships. `fetch_approvals` reads who approved the run (GitHub's run approvals API) for
the release's history, which `mlops history` shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.adapters.github import GitHubClient
from ml.deploy import release as releases
from ml.promotions.records import now_iso
from ml.registry import Registry


def _figures(registry: Registry, name: str, version: int, gates_file: Path) -> list[str]:
    """`metric value (floor >= x)` lines of one model version, best effort (decoration)."""
    from ml.errors import MlopsError
    from ml.promotions.gates import load_gates

    try:
        gates = load_gates(gates_file).for_model(name)
        info = registry.get_version(name, version)
        metrics = registry.run_metrics(info.run_id) if info and info.run_id else {}
    except MlopsError as exc:
        return [f"(figures unavailable: {exc})"]
    floors, ceilings = gates.floors or {}, gates.ceilings or {}
    out = []
    for metric, value in sorted(metrics.items()):
        bound = ""
        if metric in floors:
            bound = f" (floor ≥ {floors[metric]:g})"
        elif metric in ceilings:
            bound = f" (ceiling ≤ {ceilings[metric]:g})"
        out.append(f"{metric} {value:.4f}{bound}")
    return out or ["(no metrics logged)"]


def summary_markdown(registry: Registry, model: str, release_id: str, gates_file: Path) -> str:
    """The approval page's job summary for release `release_id`."""
    rel = releases.get(registry, model, release_id)
    lines = [
        f"## Release `{rel.id}` for production",
        "",
        f"- commit: `{rel.git_sha}`",
        f"- serve image: `{rel.serve_image}`",
    ]
    if rel.mlflow_image:
        lines.append(f"- mlflow image: `{rel.mlflow_image}`")
    lines.append(f"- record digest: `{rel.digest or 'NOT SEALED'}`")
    lines += ["", "| model | version | holdout metrics (gates of the release's commit) |"]
    lines.append("|---|---|---|")
    for name, version in sorted(rel.models.items()):
        figures = "<br>".join(_figures(registry, name, version, gates_file))
        lines.append(f"| {name} | {version} | {figures} |")
    scan = rel.latest_scan()
    lines.append("")
    if scan is None:
        lines.append("- scan: **none** (production will refuse this release)")
    else:
        state = "passed" if scan.passed else "**FAILED** (production will refuse this release)"
        lines.append(
            f"- scan: {state}, {scan.tool} {scan.tool_version}, DB of {scan.db_updated_at}, "
            f"at {scan.time}"
        )
        for image, found in scan.images.items():
            if found:
                lines.append(f"  - `{image}`: " + "; ".join(found))
    staging = rel.verified.get("staging")
    if staging is None:
        lines.append("- staging: **not verified** (production will refuse this release)")
    else:
        lines.append(
            f"- staging: verified ({', '.join(staging.checks)}) at {staging.time}"
            + (f", {staging.run_url}" if staging.run_url else "")
        )
    problems = releases.verify_chain(releases.list_all(registry, model))
    lines.append(
        "- record integrity: "
        + ("intact" if not problems else "**FAILED**: " + "; ".join(problems))
    )
    return "\n".join(lines) + "\n"


def fetch_approvals(client: GitHubClient, run_id: str) -> list[dict[str, Any]]:
    """Who approved (or rejected) the deployments of workflow run `run_id`: one entry per
    review, {user, state, environments, comment, run_id, recorded}. GitHub's response has no
    time of the review: `recorded` is when it was read (right after the approval)."""
    body = client.request("GET", f"/repos/{client.repo}/actions/runs/{run_id}/approvals")
    out = []
    for review in body or []:
        out.append(
            {
                "user": str((review.get("user") or {}).get("login") or "unknown"),
                "state": str(review.get("state") or "unknown"),
                "environments": sorted(
                    str(e.get("name")) for e in review.get("environments") or []
                ),
                "comment": str(review.get("comment") or ""),
                "run_id": str(run_id),
                "time": now_iso(),
            }
        )
    return out


def approval_lines(tags: dict[str, str]) -> list[str]:
    """`mlops history`'s lines for the approvals recorded on the releases among a model's tags,
    oldest first: `<time> release R: approved by U for production (run N): "comment"`."""
    out = []
    for key, raw in tags.items():
        if not key.startswith(releases.TAG_PREFIX):
            continue
        try:
            rel = releases.Release.model_validate_json(raw)
        except ValueError:
            continue
        for a in rel.approvals:
            comment = f': "{a.get("comment")}"' if a.get("comment") else ""
            out.append(
                f"{a.get('time')} release {rel.id}: {a.get('state')} by {a.get('user')} for "
                f"{', '.join(a.get('environments') or [])} (run {a.get('run_id')}){comment}"
            )
    return sorted(out)
