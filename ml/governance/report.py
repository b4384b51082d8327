"""The model risk record of one release (`mlops release report`): what a validator signs.

One document per release, as markdown (for the repository and PR comments) and as one
self-contained HTML file (inline style, no script, no network; every value escaped) a validator
can open, print or sign: the release itself (git SHA, images by digest, when it was
made), and for each model version it serves: the data it was trained on (source, sha256, rows),
the training configuration (the run's parameters), the holdout metrics, the governance it was
trained under (its `contract.json`), every promotion gate with its figures (evaluated now,
against the live registry, as `mlops promote validate` does), the fairness figures per group,
the canary and the fairness figures on its replay, the reason texts the version answers with
(logged with it), and who approved and verified it, when.

The record is built once as blocks (headings, tables, paragraphs); `markdown` and `html` render
the same blocks, so the two files always say the same thing.
"""

from __future__ import annotations

import html as html_escape
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.governance import canary_fairness
from ml.governance.config import Governance

if TYPE_CHECKING:
    from ml.deploy.release import Release
    from ml.promotions.gates import GatesFile, Verdict
    from ml.registry import ModelState, Registry, VersionInfo


@dataclass(frozen=True)
class Heading:
    """A heading: level 1 (the record), 2 (a model version), 3 (a section)."""

    level: int
    text: str


@dataclass(frozen=True)
class Table:
    """A table; cells are shown as text."""

    header: tuple[str, ...]
    rows: Sequence[tuple[object, ...]]


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text."""

    text: str


Block = Heading | Table | Para


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[Block]:
    return [Table(header, rows)] if rows else []


def markdown(blocks: Sequence[Block]) -> str:
    """The record as markdown."""
    lines: list[str] = []
    for b in blocks:
        if lines:
            lines.append("")
        if isinstance(b, Heading):
            lines.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            lines.append(b.text)
        else:
            lines.append("| " + " | ".join(b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in b.rows]
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "color:#111}table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #999;"
    "padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#eee}"
    "td.FAIL{background:#fdd;font-weight:bold}td.WAIVED{background:#ffd}"
    "@media print{body{margin:0}}"
)


def html(blocks: Sequence[Block], title: str) -> str:
    """The record as one self-contained HTML document: inline style, no script, no external
    resource (it opens offline and prints as it shows); every value escaped."""

    def esc(value: object) -> str:
        return html_escape.escape(str(value), quote=True)

    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # No script, no fetch: the document can only show itself.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{esc(b.text)}</p>")
        else:
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in b.header) + "</tr>")
            for row in b.rows:
                cells = []
                for c in row:
                    label = str(c)
                    mark = f' class="{label}"' if label in ("FAIL", "WAIVED") else ""
                    cells.append(f"<td{mark}>{esc(c)}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


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


def _reason_texts(record: Mapping[str, Any], governance: Governance) -> list[Block]:
    """The texts the version answers with: logged with it, or (a version from before they
    were) the reviewed file's, said so."""
    from ml.errors import ConfigError
    from ml.governance.reasons import governance_from_record

    try:
        logged = governance_from_record(record)
    except ConfigError as exc:
        logged, note = None, f"Its logged reason texts are unreadable ({exc}); the file's: "
    else:
        note = "Not logged with this version (trained before they were); the file's: "
    used = logged or governance
    shown = f"{note}{governance.path}." if logged is None else "As logged with the version."
    return [
        Heading(
            3,
            f"Reason codes ({used.reasons.method}, top {used.reasons.top}, for declines at "
            f"PD >= {used.reasons.decline_threshold:g})",
        ),
        Para(shown),
        *_table(("feature", "reviewed text"), sorted(used.reasons.texts.items())),
    ]


def _canary_blocks(verdict: Verdict) -> list[Block]:
    canary = next((r for r in verdict.results if r.family == "canary" and r.figures), None)
    blocks: list[Block] = [Heading(3, "Canary against production")]
    if canary is not None and canary.figures:
        f = canary.figures
        blocks.append(
            Table(
                ("figure", "value"),
                [
                    (k, f"{v:.4g}" if isinstance(v, float) else v)
                    for k, v in sorted(f.items())
                    if not isinstance(v, dict | list)
                ],
            )
        )
    else:
        blocks.append(
            Para(next((r.detail for r in verdict.results if r.family == "canary"), "not run"))
        )
    fair = canary_fairness.rows(verdict.results)
    caption = canary_fairness.caption(verdict.results)
    blocks.append(Heading(3, "Fairness on the canary replay"))
    if fair and caption:
        blocks += [Para(caption), Table(canary_fairness.HEADER, fair)]
    else:
        found = next((r.detail for r in verdict.results if r.family == canary_fairness.GATE), None)
        blocks.append(Para(found or "not configured (governance.fairness and canary)"))
    return blocks


def _as_promoted(state: ModelState | None, info: VersionInfo) -> tuple[ModelState | None, str]:
    """The registry state to judge `info` in, as it was promoted: once it is production itself,
    the canary compares it with the version it replaced (its production apply record's
    `previous`), not with itself. Returns the state and a sentence saying so ("" otherwise)."""
    from dataclasses import replace

    from ml.promotions.records import records

    if state is None or state.aliases.get("production") != info.version:
        return state, ""
    previous = [r.get("previous") for r in records(info, "production") if r.get("previous")]
    before = previous[-1] if previous else None
    if not isinstance(before, int) or before not in state.versions:
        return state, ""
    return (
        replace(state, aliases={**state.aliases, "production": before}),
        f"v{info.version} serves production now; the canary and its fairness figures compare it "
        f"with v{before}, the production version it replaced (its production apply record).",
    )


def release_record(
    registry: Registry,
    model: str,
    release: Release,
    gates: GatesFile,
    governance: Governance,
) -> list[Block]:
    """The record of `release` (a release of `model`'s registry) as blocks."""
    from ml.contract import CONTRACT_FILE
    from ml.promotions.gates import verdicts as gate_checks

    blocks: list[Block] = [
        Heading(1, f"Model risk record: release {release.id}"),
        Table(
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
        blocks.append(Heading(2, f"{name} v{version}"))
        if info is None or not info.run_id:
            blocks.append(
                Para(f"{name} v{version} is not in the registry: nothing more to record.")
            )
            continue
        run = registry.run(info.run_id)
        if run is None:
            blocks.append(
                Para(f"{name} v{version}: its run {info.run_id} is gone from the registry.")
            )
            continue
        run_tags = run.tags
        blocks += [
            Heading(3, "Data and code"),
            Table(
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
            Heading(3, "Training configuration"),
            *(
                _table(("parameter", "value"), sorted(dict(run.params).items()))
                or [Para("No parameters logged.")]
            ),
            Heading(3, "Holdout metrics"),
            *(
                _table(
                    ("metric", "value"),
                    [(k, f"{v:.4f}") for k, v in sorted(registry.run_metrics(info.run_id).items())],
                )
                or [Para("No metrics logged.")]
            ),
        ]
        with tempfile.TemporaryDirectory(prefix="report-") as tmp:
            logged = registry.download_run_file(info.run_id, CONTRACT_FILE, Path(tmp))
            record = json.loads(logged.read_text()) if logged else {}
        trained_under = (record.get("governance") or {}).get("protected") or {}
        blocks += [
            Heading(3, "Protected attributes (as trained)"),
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
                or [Para("No governance record: trained before config/governance.yaml existed.")]
            ),
        ]
        judged, against = _as_promoted(state, info)
        verdict = gate_checks.check_version(
            registry, judged, name, version, gates.for_model(name), rollback=False
        )
        blocks += [
            Heading(
                3, f"Promotion gates ({'all pass' if verdict.passed else 'FAILED'}, evaluated now)"
            ),
            *([Para(against)] if against else []),
            Table(
                ("gate", "result", "detail"), [(r.gate, r.label, r.detail) for r in verdict.results]
            ),
            Heading(3, "Fairness on the holdout"),
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
                or [Para("Fairness gate not configured.")]
            ),
            *_canary_blocks(verdict),
            *_reason_texts(record, governance),
            Heading(3, "Approvals and verification"),
            *(
                _table(
                    ("environment", "event", "who", "time", "where"), _approvals(release, info.tags)
                )
                or [Para("No promotion or verification recorded yet.")]
            ),
        ]
    return blocks
