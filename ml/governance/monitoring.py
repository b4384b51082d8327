"""Approval rate per protected group over the serving prediction logs (`mlops monitor fairness`).

Every logged record carries the protected columns (the signature keeps them, the model does not
use the excluded ones: ml/governance/training.py), so the served decisions can be grouped as the
fairness gate groups the holdout: per group of each attribute in config/governance.yaml, the
approval rate and its ratio to the reference group's. Pushed to the Pushgateway like the drift
figures (`job="mlops_fairness"`, grouped by model), each ratio next to its bound, so the alert
rule (monitoring/prometheus/rules/governance.yml) holds no second copy of a number. Groups with
fewer than `min_group_rows` records are pushed with their row count and not alerted on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.governance.config import Governance
from ml.governance.fairness import FairnessBounds

FAIRNESS_JOB = "mlops_fairness"


def approval_by_group(
    frame: pd.DataFrame, governance: Governance, bounds: FairnessBounds
) -> dict[str, Any]:
    """Per attribute and group: rows, approval rate, ratio to the reference group, breach.

    `frame` is `ml.monitoring.logs.read_predictions`' (the features and `approved`).
    """
    approved = frame["approved"].to_numpy(dtype=bool)
    groups_out: list[dict[str, Any]] = []
    breaches: list[str] = []
    for name, attr in governance.protected.items():
        if name not in frame.columns:
            continue
        values = frame[name].to_numpy(dtype=np.float64)
        present = ~np.isnan(values)  # a caller that did not send the attribute
        labels = attr.groups(values[present])
        ok = approved[present]
        ref_mask = labels == attr.reference_label
        ref_rows = int(ref_mask.sum())
        ref_rate = float(ok[ref_mask].mean()) if ref_rows else math.nan
        for label in sorted(set(labels.tolist())):
            mask = labels == label
            rows = int(mask.sum())
            rate = float(ok[mask].mean())
            ratio = rate / ref_rate if ref_rate else math.nan
            judged = rows >= bounds.min_group_rows and ref_rows >= bounds.min_group_rows
            breach = judged and label != attr.reference_label and ratio < bounds.min_approval_ratio
            if breach:
                breaches.append(f"{name}={label}: approval ratio {ratio:.3f} < "
                                f"{bounds.min_approval_ratio} ({rows:,} records)")  # fmt: skip
            groups_out.append(
                {
                    "attribute": name,
                    "group": label,
                    "reference": attr.reference_label,
                    "rows": rows,
                    "approval_rate": rate,
                    "approval_ratio": None if math.isnan(ratio) else ratio,
                    "judged": judged,
                    "breach": breach,
                }
            )
    return {
        "rows": len(frame),
        "groups": groups_out,
        "min_approval_ratio": bounds.min_approval_ratio,
        "min_group_rows": bounds.min_group_rows,
        "breaches": breaches,
        "status": "breach" if breaches else "ok",
    }


def fairness_registry(model: str, summary: Mapping[str, Any]) -> Any:
    """The figures as a prometheus_client registry (separate for tests)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    names = ["model", "attribute", "group"]
    rate = Gauge("mlops_fairness_approval_rate", "Approval rate of the group.", names,
                 registry=registry)  # fmt: skip
    ratio = Gauge("mlops_fairness_approval_ratio", "Group approval rate / reference group's.",
                  names, registry=registry)  # fmt: skip
    rows = Gauge("mlops_fairness_group_rows", "Logged records of the group.", names,
                 registry=registry)  # fmt: skip
    for g in summary["groups"]:
        labels = {"model": model, "attribute": g["attribute"], "group": g["group"]}
        rate.labels(**labels).set(g["approval_rate"])
        rows.labels(**labels).set(g["rows"])
        if g["approval_ratio"] is not None:
            ratio.labels(**labels).set(g["approval_ratio"])
    for name, doc, value in (
        ("mlops_fairness_min_approval_ratio", "governance.fairness.min_approval_ratio.",
         summary["min_approval_ratio"]),
        ("mlops_fairness_min_group_rows", "governance.fairness.min_group_rows.",
         summary["min_group_rows"]),
        ("mlops_fairness_last_success_timestamp_seconds", "When the fairness job last completed.",
         time.time()),
    ):  # fmt: skip
        Gauge(name, doc, ["model"], registry=registry).labels(model=model).set(value)
    return registry


def push_fairness(url: str, model: str, summary: Mapping[str, Any]) -> None:
    """Replace the model's group on the Pushgateway with these figures."""
    from ml.monitoring.pushgateway import _push

    _push(url, FAIRNESS_JOB, fairness_registry(model, summary), {"model": model})
