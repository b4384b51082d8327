"""Fairness figures per protected group: approval rate, its ratio to the reference group (the
four-fifths rule), true positive rate and calibration, each compared with the reference group.

Definitions (a decline is a score at or above the decision threshold):
- approval rate: the share of the group approved;
- approval ratio: the group's approval rate over the reference group's (>= 0.8: four-fifths);
- true positive rate (equal opportunity): the share of the group's applicants who did NOT
  default that are approved; the gate bounds its difference from the reference group's;
- calibration gap: mean predicted probability of default minus the observed default rate; the
  gate bounds its difference from the reference group's.

Without outcomes (a replay of the prediction log: nobody knows yet who will default), only the
approval rate and its ratio are figures; the TPR and calibration are shown as n/a, not judged.

Differences carry a standard error; a difference fails only when it exceeds its bound by more
than two standard errors, so a small group's sampling noise is not read as unfairness (the
figures show both). Groups smaller than `min_group_rows` are reported and not judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ml.governance.config import Governance


class FairnessBounds(BaseModel):
    """`fairness:` in config/gates.yaml: the reviewed bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=0.5, gt=0, lt=1)
    min_group_rows: int = Field(default=300, ge=1)
    min_approval_ratio: float = Field(default=0.8, ge=0, le=1)
    max_tpr_difference: float = Field(default=0.05, ge=0, le=1)
    max_calibration_difference: float = Field(default=0.05, ge=0, le=1)


@dataclass(frozen=True)
class GroupFigures:
    """One group of one protected attribute, against the reference group."""

    attribute: str
    group: str
    reference: str
    rows: int
    approval_rate: float
    approval_ratio: float
    tpr: float
    tpr_difference: float
    tpr_se: float
    calibration_gap: float
    calibration_difference: float
    calibration_se: float
    judged: bool


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else math.nan


def group_figures(
    scores: np.ndarray,
    labels: np.ndarray | None,
    attributes: Mapping[str, np.ndarray],
    governance: Governance,
    bounds: FairnessBounds,
) -> list[GroupFigures]:
    """Figures for every group of every protected attribute present in `attributes`
    (`labels` None: no outcomes, approval figures only)."""
    approved = scores < bounds.threshold
    known = labels is not None
    observed = np.asarray(labels) if labels is not None else np.zeros(len(scores))
    good = (observed == 0) & known
    out: list[GroupFigures] = []
    for name, attr in governance.protected.items():
        if name not in attributes:
            continue
        groups = attr.groups(attributes[name])
        ref = groups == attr.reference_label

        def stats(mask: np.ndarray) -> tuple[int, float, float, int, float, float]:
            n = int(mask.sum())
            n_good = int((mask & good).sum())
            rate = float(approved[mask].mean()) if n else math.nan
            tpr = float(approved[mask & good].mean()) if n_good else math.nan
            gap = float(scores[mask].mean() - observed[mask].mean()) if n and known else math.nan
            sd = float(observed[mask].std()) if n and known else math.nan
            return n, rate, tpr, n_good, gap, sd

        r_n, r_rate, r_tpr, r_good, r_gap, r_sd = stats(ref)
        for label in sorted(set(groups.tolist()), key=_order):
            if label == attr.reference_label:
                continue
            n, rate, tpr, n_good, gap, sd = stats(groups == label)
            out.append(
                GroupFigures(
                    attribute=name,
                    group=label,
                    reference=attr.reference_label,
                    rows=n,
                    approval_rate=rate,
                    approval_ratio=rate / r_rate if r_rate else math.nan,
                    tpr=tpr,
                    tpr_difference=tpr - r_tpr,
                    tpr_se=math.hypot(_se(tpr, n_good), _se(r_tpr, r_good)),
                    calibration_gap=gap,
                    calibration_difference=gap - r_gap,
                    calibration_se=math.hypot(sd / math.sqrt(n), r_sd / math.sqrt(r_n))
                    if n and r_n
                    else math.nan,
                    judged=n >= bounds.min_group_rows and r_n >= bounds.min_group_rows,
                )
            )
    return out


def _order(label: str) -> tuple[float, str]:
    """Codes and bands in numeric order: "<25" first, then "25-34", ..., "60+"."""
    if label.startswith("<"):
        return (-math.inf, label)
    digits = "".join(ch for ch in label if ch.isdigit() or ch == "-")
    try:
        return (float(digits.split("-")[0] or "-1"), label)
    except ValueError:
        return (math.inf, label)


def _within(diff: float, se: float, bound: float) -> bool:
    if math.isnan(diff):
        return True
    return abs(diff) <= bound + 2 * (0.0 if math.isnan(se) else se)


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def describe(f: GroupFigures) -> str:
    """`SEX=2 vs 1: approval 0.781 (ratio 0.982), TPR diff -0.010, ...`: one group's figures."""
    return (
        f"{f.attribute}={f.group} vs {f.reference}: approval {f.approval_rate:.3f} "
        f"(ratio {f.approval_ratio:.3f}), TPR diff {_signed(f.tpr_difference)}, "
        f"calibration diff {_signed(f.calibration_difference)} ({f.rows:,} rows)"
    )


def problems_of(f: GroupFigures, bounds: FairnessBounds) -> list[str]:
    """What breaks a bound in one judged group's figures (empty: within every bound)."""
    attr, problems = f.attribute, []
    if not f.approval_ratio >= bounds.min_approval_ratio:
        problems.append(
            f"{attr}={f.group}: approval ratio {f.approval_ratio:.3f} < {bounds.min_approval_ratio}"
        )
    if not _within(f.tpr_difference, f.tpr_se, bounds.max_tpr_difference):
        problems.append(
            f"{attr}={f.group}: TPR difference {f.tpr_difference:+.3f} beyond "
            f"{bounds.max_tpr_difference} (+2 se {2 * f.tpr_se:.3f})"
        )
    if not _within(f.calibration_difference, f.calibration_se, bounds.max_calibration_difference):
        problems.append(
            f"{attr}={f.group}: calibration difference {f.calibration_difference:+.3f} "
            f"beyond {bounds.max_calibration_difference} (+2 se {2 * f.calibration_se:.3f})"
        )
    return problems


def plain_figures(f: GroupFigures) -> dict[str, Any]:
    """One group's figures, JSON-ready (NaN as None)."""
    return _plain(asdict(f))


def outcomes(
    figures: Iterable[GroupFigures], bounds: FairnessBounds
) -> list[tuple[str, bool, str, dict[str, Any]]]:
    """One gate outcome per protected attribute: (gate, passed, detail, figures)."""
    by_attr: dict[str, list[GroupFigures]] = {}
    for f in figures:
        by_attr.setdefault(f.attribute, []).append(f)
    results = []
    for attr, groups in by_attr.items():
        problems, shown = [], []
        for f in groups:
            line = describe(f)
            if not f.judged:
                shown.append(line + f" [not judged: fewer than {bounds.min_group_rows} rows]")
                continue
            shown.append(line)
            problems.extend(problems_of(f, bounds))
        detail = ("; ".join(problems) + " | " if problems else "") + "; ".join(shown)
        data = {"groups": [_plain(asdict(f)) for f in groups], "bounds": bounds.model_dump()}
        results.append((f"fairness:{attr}", not problems, detail, data))
    return results


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


class GovernanceGates(BaseModel):
    """`governance:` in config/gates.yaml: turns on the `protected-inputs` gate (against
    `file`) and, with `fairness:`, the fairness gate on the reviewed holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: Path = Field(default=Path("config/governance.yaml"))
    fairness: FairnessBounds | None = None
