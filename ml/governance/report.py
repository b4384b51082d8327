"""The model risk record of one release (`mlops release report`): what a validator signs.

One markdown document per release: the release itself (git SHA, images by digest, when it was
made), and for each model version it serves: the data it was trained on (source, sha256, rows),
the training configuration (the run's parameters), the holdout metrics, the governance it was
trained under (its `contract.json`), every promotion gate with its figures (evaluated now,
against the live registry, as `mlops promote validate` does), the fairness figures per group,
the canary, the reviewed reason texts, and who approved and verified it, when.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.governance.config import Governance

if TYPE_CHECKING:
    from ml.deploy.release import Release
    from ml.promotions.gates import GatesFile, Verdict
    from ml.registry import Registry


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _fairness_rows(verdict: Verdict) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for r in verdict.results:
        if r.family != "fairness" or not r.figures:
            continue
        for g in r.figures.get("groups", []):

            def num(key: str, g: Mapping[str, Any] = g) -> str:
                value = g.get(key)
                return (
                    "n/a" if value is None else f"{value:+.3f}" if "diff" in key else f"{value:.3f}"
                )

            rows.append(
                (
                    g["attribute"],
                    f"{g['group']} (vs {g['reference']})",
                    f"{g['rows']:,}",
                    num("approval_rate"),
                    num("approval_ratio"),
                    num("tpr_difference"),
                    num("calibration_difference"),
                    "yes" if g["judged"] else "no",
                    r.label,
                )
            )
    return rows


def _approvals(release: Release, tags: Mapping[str, str]) -> list[tuple[object, ...]]:
    from ml.promotions.records import ENVIRONMENTS, records
    from ml.registry import VersionInfo

    info = VersionInfo("", 0, "READY", "None", None, source="", tags=dict(tags))
    rows: list[tuple[object, ...]] = []
    for env in ENVIRONMENTS:
        for rec in records(info, env):
            rows.append(
                (
                    env,
                    "promotion applied",
                    rec.get("actor", "?"),
                    rec.get("time", "?"),
                    rec.get("pr") or rec.get("run_url") or "",
                )
            )
        verified = release.verified.get(env)
        if verified is not None:
            rows.append(
                (
                    env,
                    "release verified" + (" (approved deployment)" if env == "production" else ""),
                    getattr(verified, "actor", None) or "CD",
                    verified.time,
                    verified.run_url or ", ".join(verified.checks),
                )
            )
    return rows


def release_report(
    registry: Registry,
    model: str,
    release: Release,
    gates: GatesFile,
    governance: Governance,
) -> str:
    """The markdown record of `release` (a release of `model`'s registry)."""
    from ml.contract import CONTRACT_FILE
    from ml.promotions.gates import verdicts as gate_checks

    lines = [
        f"# Model risk record: release {release.id}",
        "",
        *_table(
            ("field", "value"),
            [
                ("release", release.id),
                ("git SHA", release.git_sha),
                ("serve image", release.serve_image),
                ("mlflow image", release.mlflow_image or "-"),
                ("created", release.created),
                ("models", ", ".join(f"{n} v{v}" for n, v in sorted(release.models.items()))),
                ("withdrawn", ", ".join(sorted(release.withdrawn)) or "no"),
            ],
        ),
    ]
    for name, version in sorted(release.models.items()):
        state = registry.model_state(name)
        info = state.versions.get(version) if state else None
        lines += ["", f"## {name} v{version}", ""]
        if info is None or not info.run_id:
            lines.append(f"{name} v{version} is not in the registry: nothing more to record.")
            continue
        run = registry.run(info.run_id)
        if run is None:
            lines.append(f"{name} v{version}: its run {info.run_id} is gone from the registry.")
            continue
        run_tags = run.tags
        lines += [
            "### Data and code",
            *_table(
                ("field", "value"),
                [
                    ("data source", run_tags.get("data_source", "?")),
                    ("data sha256", info.tags.get("data_sha256", "?")),
                    ("rows", info.tags.get("data_rows", "?")),
                    ("training git SHA", info.tags.get("git_sha", "?")),
                    ("model type", info.tags.get("model_type", "?")),
                    ("training run", info.run_id),
                ],
            ),
            "",
            "### Training configuration",
            *_table(("parameter", "value"), sorted(dict(run.params).items())),
            "",
            "### Holdout metrics",
            *_table(
                ("metric", "value"),
                [(k, f"{v:.4f}") for k, v in sorted(registry.run_metrics(info.run_id).items())],
            ),
        ]
        with tempfile.TemporaryDirectory(prefix="report-") as tmp:
            logged = registry.download_run_file(info.run_id, CONTRACT_FILE, Path(tmp))
            record = json.loads(logged.read_text()) if logged else {}
        trained_under = (record.get("governance") or {}).get("protected") or {}
        lines += [
            "",
            "### Protected attributes (as trained)",
            *(
                _table(
                    ("attribute", "model input", "reference", "reason"),
                    [
                        (
                            n,
                            "yes" if p.get("input") else "no",
                            p.get("reference"),
                            p.get("reason") or "",
                        )
                        for n, p in trained_under.items()
                    ],
                )
                if trained_under
                else ["No governance record: trained before config/governance.yaml existed."]
            ),
        ]
        verdict = gate_checks.check_version(
            registry, state, name, version, gates.for_model(name), rollback=False
        )
        lines += [
            "",
            f"### Promotion gates ({'all pass' if verdict.passed else 'FAILED'}, evaluated now)",
            *_table(
                ("gate", "result", "detail"), [(r.gate, r.label, r.detail) for r in verdict.results]
            ),
            "",
            "### Fairness on the holdout",
            *(
                _table(
                    (
                        "attribute",
                        "group",
                        "rows",
                        "approval",
                        "ratio",
                        "TPR diff",
                        "calibration diff",
                        "judged",
                        "gate",
                    ),
                    _fairness_rows(verdict),
                )
                or ["Fairness gate not configured."]
            ),
        ]
        canary = next((r for r in verdict.results if r.family == "canary" and r.figures), None)
        lines += [
            "",
            "### Canary against production",
            (
                ", ".join(
                    f"{k}: {v}"
                    for k, v in sorted(canary.figures.items())
                    if not isinstance(v, dict)
                )
                if canary and canary.figures
                else next((r.detail for r in verdict.results if r.family == "canary"), "not run")
            ),
            "",
            f"### Reason codes ({governance.reasons.method}, top {governance.reasons.top}, "
            "for declines)",
            *_table(("feature", "reviewed text"), sorted(governance.reasons.texts.items())),
            "",
            "### Approvals and verification",
            *(
                _table(
                    ("environment", "event", "who", "time", "where"), _approvals(release, info.tags)
                )
                or ["No promotion or verification recorded yet."]
            ),
        ]
    return "\n".join(lines) + "\n"
