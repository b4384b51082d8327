"""Fairness on the canary's replay: is the candidate fair on the inputs the canary replays?

The canary (ml/promotions/canary.py) asks what switching production to the candidate would
change; this asks the fairness question on the same rows, scored once by both versions
(`canary.score_pair`): per group of each protected attribute of config/governance.yaml, against
its reference group, the figures and bounds of the fairness gate (ml/governance/fairness.py):
approval ratio (four-fifths rule), TPR difference and calibration difference.

- Replay `holdout`: every figure (the holdout has the outcomes).
- Replay `logs`: the approval figures only, for the protected attributes the callers sent (the
  log has no outcomes yet); TPR and calibration show as n/a.

The candidate is judged, absolutely, like the fairness gate on the holdout: never waived, not
even by a rollback (a version that fails a fairness bound on today's inputs is no safe place to
go back to; lowering a bound is a reviewed change to config/gates.yaml). Production's figures on
the same rows stand beside the candidate's, so a reviewer sees which group the move helps or
hurts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml.governance import fairness
from ml.governance.config import Governance

if TYPE_CHECKING:
    from ml.batch import ScoringModel
    from ml.promotions.canary import Replay

GATE = "canary-fairness"
"""The registered gate's name (ml/governance/gates.py); results are `canary-fairness:<attr>`."""


@dataclass(frozen=True)
class ReplayFairness:
    """Both versions' fairness figures on the replayed rows both contracts accept."""

    candidate: int
    production: int
    replay: str
    rows: int
    labelled: bool
    threshold: float
    mine: list[fairness.GroupFigures]
    theirs: list[fairness.GroupFigures]
    absent: tuple[str, ...]  # protected attributes the replay does not carry


def replay_figures(
    candidate: ScoringModel,
    production: ScoringModel,
    replay: Replay,
    governance: Governance,
    bounds: fairness.FairnessBounds,
) -> ReplayFairness:
    """Score `replay` with both versions and group their decisions.

    Raises:
        DataError: the replay cannot feed a version, or no row is in both contracts.
    """
    import numpy as np

    from ml.promotions.canary import score_pair

    scored = score_pair(candidate, production, replay)
    valid = scored.valid
    present = [n for n in governance.protected if n in replay.frame.columns]
    attributes = {}
    for name in present:
        values = replay.frame[name].to_numpy(dtype=np.float64)[valid]
        if not np.isnan(values).any():  # a log whose callers did not send it has gaps
            attributes[name] = values
    labels = None if replay.labels is None else np.asarray(replay.labels)[valid]
    return ReplayFairness(
        candidate=candidate.version,
        production=production.version,
        replay=replay.description,
        rows=int(valid.sum()),
        labelled=labels is not None,
        threshold=bounds.threshold,
        mine=fairness.group_figures(scored.candidate, labels, attributes, governance, bounds),
        theirs=fairness.group_figures(scored.production, labels, attributes, governance, bounds),
        absent=tuple(n for n in governance.protected if n not in attributes),
    )


def _pair(f: ReplayFairness) -> list[tuple[fairness.GroupFigures, fairness.GroupFigures | None]]:
    theirs = {(g.attribute, g.group): g for g in f.theirs}
    return [(g, theirs.get((g.attribute, g.group))) for g in f.mine]


def outcomes(
    f: ReplayFairness, bounds: fairness.FairnessBounds
) -> list[tuple[str, bool, str, dict[str, Any]]]:
    """One gate outcome per protected attribute, the candidate judged, production shown."""
    by_attr: dict[str, list[tuple[fairness.GroupFigures, fairness.GroupFigures | None]]] = {}
    for mine, theirs in _pair(f):
        by_attr.setdefault(mine.attribute, []).append((mine, theirs))
    where = (
        f"v{f.candidate} on the canary replay ({f.replay}; {f.rows:,} rows, approved when "
        f"PD < {f.threshold:g}{'' if f.labelled else '; no outcomes: approval figures only'})"
    )
    shared = {
        "candidate": f.candidate,
        "production": f.production,
        "replay": f.replay,
        "rows": f.rows,
        "labelled": f.labelled,
        "threshold": f.threshold,
        "bounds": bounds.model_dump(),
    }
    results: list[tuple[str, bool, str, dict[str, Any]]] = []
    for attr, pairs in by_attr.items():
        problems: list[str] = []
        shown: list[str] = []
        for mine, theirs in pairs:
            beside = (
                f"; production v{f.production} ratio {theirs.approval_ratio:.3f}"
                if theirs is not None
                else ""
            )
            line = fairness.describe(mine) + beside
            if not mine.judged:
                shown.append(line + f" [not judged: fewer than {bounds.min_group_rows} rows]")
                continue
            shown.append(line)
            problems.extend(fairness.problems_of(mine, bounds))
        detail = (
            ("; ".join(problems) + " | " if problems else "")
            + f"{where}: "
            + "; ".join(shown)
            + (
                ""
                if not problems
                else " (hint: a fairness bound is never waived; retrain, or "
                "change the bound in config/gates.yaml by a reviewed PR)"
            )
        )
        groups = [
            {
                **fairness.plain_figures(mine),
                "production": None if theirs is None else fairness.plain_figures(theirs),
            }
            for mine, theirs in pairs
        ]
        results.append((f"{GATE}:{attr}", not problems, detail, {**shared, "groups": groups}))
    for attr in f.absent:
        results.append(
            (
                f"{GATE}:{attr}",
                True,
                f"not judged: the canary replay ({f.replay}) does not carry {attr} for every "
                "row (callers send it, or replay the holdout)",
                {**shared, "groups": []},
            )
        )
    return results


def _num(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def rows(results: Iterable[Any]) -> list[tuple[str, ...]]:
    """Table rows of the canary-fairness results of a verdict (`GateResult`s): attribute, group,
    rows, approval and ratio of the candidate and production, TPR and calibration differences
    (candidate, production beside), judged, result."""
    out: list[tuple[str, ...]] = []
    for r in results:
        if r.family != GATE or not r.figures:
            continue
        for g in r.figures.get("groups", []):
            p = g.get("production") or {}
            out.append(
                (
                    g["attribute"],
                    f"{g['group']} (vs {g['reference']})",
                    f"{g['rows']:,}",
                    f"{_num(g['approval_rate'])} / {_num(p.get('approval_rate'))}",
                    f"{_num(g['approval_ratio'])} / {_num(p.get('approval_ratio'))}",
                    f"{_num(g['tpr_difference'], True)} / {_num(p.get('tpr_difference'), True)}",
                    f"{_num(g['calibration_difference'], True)} / "
                    f"{_num(p.get('calibration_difference'), True)}",
                    "yes" if g["judged"] else "no",
                    r.label,
                )
            )
    return out


HEADER = (
    "attribute",
    "group",
    "rows",
    "approval cand. / prod.",
    "ratio cand. / prod.",
    "TPR diff cand. / prod.",
    "calibration diff cand. / prod.",
    "judged",
    "gate",
)


def caption(results: Sequence[Any]) -> str | None:
    """One line naming the versions, the replay and the bounds, or None when it did not run."""
    f: Mapping[str, Any] | None = next(
        (r.figures for r in results if r.family == GATE and r.figures), None
    )
    if f is None:
        return None
    b = f["bounds"]
    outcomes_note = "" if f["labelled"] else " No outcomes in this replay: approval figures only."
    return (
        f"Fairness on the canary replay: v{f['candidate']} (production v{f['production']} "
        f"beside) on the {f['replay']}, {f['rows']:,} rows, approved when PD < "
        f"{f['threshold']:g}; bounds: ratio >= {b['min_approval_ratio']}, |TPR diff| <= "
        f"{b['max_tpr_difference']}, |calibration diff| <= {b['max_calibration_difference']} "
        f"(+2 se), groups of {b['min_group_rows']}+ rows judged.{outcomes_note}"
    )


def markdown(results: Sequence[Any], cell: Any) -> list[str]:
    """The plan's table (after the canary's): caption, header and rows; [] when it did not run.
    `cell` makes one markdown cell safe (the plan's own escaping)."""
    text = caption(results)
    found = rows(results)
    if text is None or not found:
        return []
    return [
        cell(text),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|---|---|" + "---:|" * 5 + "---|---|",
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in found),
    ]


def text_line(results: Sequence[Any]) -> str | None:
    """One line for the text plan: each group's ratio, candidate → production."""
    found = [r for r in results if r.family == GATE and r.figures and r.figures.get("groups")]
    if not found:
        return None
    f = found[0].figures
    parts = [
        f"{g['attribute']}={g['group']} {_num(g['approval_ratio'])}"
        f" (production {_num((g.get('production') or {}).get('approval_ratio'))})"
        for r in found
        for g in r.figures["groups"]
    ]
    return (
        f"canary fairness v{f['candidate']} vs production v{f['production']}, approval ratio "
        "to the reference group: " + ", ".join(parts)
    )
