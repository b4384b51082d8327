"""The model card's governance section: protected attributes, fairness figures, reason texts.

Written at training time from the holdout the candidate was evaluated on, with the bounds of
the gates file (`governance.fairness` of config/gates.yaml) when it has them, so the card shows
the figures the `fairness` gate will judge.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ml.governance.config import Governance
from ml.governance.fairness import FairnessBounds, GroupFigures, group_figures


def reviewed_bounds(gates_file: Path, model_name: str) -> FairnessBounds:
    """The fairness bounds of the gates file for `model_name`, or the defaults."""
    from ml.errors import ConfigError
    from ml.promotions.gates import load_gates

    try:
        settings = load_gates(gates_file).for_model(model_name).governance
    except ConfigError:
        return FairnessBounds()
    return settings.fairness if settings and settings.fairness else FairnessBounds()


def _num(value: float, digits: int = 3, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fairness_table(figures: list[GroupFigures], bounds: FairnessBounds) -> str:
    """The figures as a markdown table, one row per group."""
    rows = [
        "| attribute | group (vs reference) | rows | approval | ratio | TPR diff | "
        "calibration diff | judged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        rows.append(
            f"| {f.attribute} | {f.group} (vs {f.reference}) | {f.rows:,} | "
            f"{_num(f.approval_rate)} | {_num(f.approval_ratio)} | "
            f"{_num(f.tpr_difference, sign=True)} ± {_num(2 * f.tpr_se)} | "
            f"{_num(f.calibration_difference, sign=True)} ± {_num(2 * f.calibration_se)} | "
            f"{'yes' if f.judged else f'no (< {bounds.min_group_rows} rows)'} |"
        )
    return "\n".join(rows)


def card_section(
    governance: Governance,
    inputs: list[str],
    x: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    bounds: FairnessBounds,
) -> str:
    """The markdown appended to the model card."""
    attributes = {n: x[n].to_numpy() for n in governance.protected if n in x.columns}
    figures = group_figures(scores, y, attributes, governance, bounds)
    protected = "\n".join(
        f"| {name} | {'yes' if a.input and name in inputs else 'no'} | {a.reference_label} | "
        f"{a.reason or 'kept out of the inputs; no tree splits on it'} |"
        for name, a in governance.protected.items()
    )
    texts = "\n".join(
        f"| {name} | {text} |" for name, text in governance.reasons.texts.items() if name in inputs
    )
    return f"""
## Governance ({governance.path})
| protected attribute | model input | reference group | why |
|---|---|---|---|
{protected}

### Fairness on the holdout (threshold {bounds.threshold})
Bounds: approval ratio >= {bounds.min_approval_ratio}; |TPR difference| <=
{bounds.max_tpr_difference} and |calibration difference| <= {bounds.max_calibration_difference},
each beyond two standard errors (±, shown); groups under {bounds.min_group_rows} rows are not
judged.

{fairness_table(figures, bounds)}

### Reason codes ({governance.reasons.method}, top {governance.reasons.top}, for declines)
| feature | reviewed text |
|---|---|
{texts}
"""
