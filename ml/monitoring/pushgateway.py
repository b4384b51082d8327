"""Push batch-job figures to a Prometheus Pushgateway (the standard for jobs that end).

Two groups:
- the drift job (`job="mlops_drift"`, grouped by model): each figure next to its threshold, so
  the alert rules compare `mlops_drift_share > mlops_drift_share_threshold` and
  `config/monitoring.yaml` stays the one place a number lives; plus the time of the last
  successful run, for the staleness alert;
- CD events (`job="mlops_cd"`, grouped by model, environment and event): the time of the last
  promotion applied / failed / rolled back and the version an environment got, for the CD
  dashboard (`mlops notify --pushgateway URL` sends them with the notification).

A push replaces its group (HTTP PUT), so a version that stopped serving leaves no stale series.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

DRIFT_JOB = "mlops_drift"
CD_JOB = "mlops_cd"
_TIMEOUT_S = 10.0


class PushError(Exception):
    """The Pushgateway did not take the push (unreachable, or refused it)."""


def _push(url: str, job: str, registry: Any, grouping: dict[str, str]) -> None:
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(url, job=job, registry=registry, grouping_key=grouping, timeout=_TIMEOUT_S)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise PushError(f"push to the Pushgateway failed: {exc}") from None


def drift_registry(summary: Mapping[str, Any]) -> Any:
    """The drift job's figures as a prometheus_client registry (separate for tests)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = {"model": str(summary["model"]), "version": str(summary["version"])}
    names = list(labels)

    def gauge(name: str, doc: str, value: float | None) -> None:
        if value is None:
            return
        Gauge(name, doc, names, registry=registry).labels(**labels).set(value)

    drift = summary["drift"]
    score = summary.get("score") or {}
    approval = summary.get("approval_rate") or {}
    logs = summary.get("logs") or {}
    figures: list[tuple[str, str, float | None]] = [
        ("mlops_drift_share", "Share of features whose drift score reached its threshold.",
         drift["share"]),
        ("mlops_drift_share_threshold", "drift.max_drift_share (config/monitoring.yaml).",
         drift["max_share"]),
        ("mlops_drift_score_psi", "PSI of production scores vs the reference's.",
         score.get("psi")),
        ("mlops_drift_score_psi_threshold", "drift.max_score_psi (config/monitoring.yaml).",
         score.get("max_psi")),
        ("mlops_drift_approval_rate", "Share of records approved in the window.",
         approval.get("current")),
        ("mlops_drift_reference_approval_rate", "Share of reference scores below the threshold.",
         approval.get("reference")),
        ("mlops_drift_approval_shift_threshold", "drift.max_approval_shift.",
         approval.get("max_shift")),
        ("mlops_drift_rows", "Records compared in the window.", summary["rows"]["current"]),
        ("mlops_drift_malformed_lines", "Malformed prediction log lines skipped.",
         logs.get("malformed")),
        ("mlops_drift_breach", "1 when a threshold was crossed.",
         1.0 if summary["status"] == "breach" else 0.0),
        ("mlops_drift_duration_seconds", "Wall time of the comparison.", summary.get("seconds")),
        ("mlops_drift_last_success_timestamp_seconds", "When the drift job last completed.",
         time.time()),
    ]  # fmt: skip
    for name, doc, value in figures:
        gauge(name, doc, value)

    per_feature = Gauge(
        "mlops_drift_feature_score",
        "Drift score of one feature (Evidently; method in the summary).",
        [*names, "feature"],
        registry=registry,
    )
    drifted = Gauge(
        "mlops_drift_feature_drifted",
        "1 when the feature's score reached its threshold.",
        [*names, "feature"],
        registry=registry,
    )
    for feature, result in drift["features"].items():
        per_feature.labels(**labels, feature=feature).set(result["score"])
        drifted.labels(**labels, feature=feature).set(1.0 if result["drifted"] else 0.0)
    return registry


def push_drift(url: str, summary: Mapping[str, Any]) -> None:
    """Push one drift summary, replacing the model's previous figures.

    Raises:
        PushError: the Pushgateway is unreachable or refused the push.
    """
    _push(url, DRIFT_JOB, drift_registry(summary), {"model": str(summary["model"])})


def push_cd_event(
    url: str, event: str, model: str, environment: str, version: str | None = None
) -> None:
    """Record a CD event: its time, and the version the environment now has (when known).

    Raises:
        PushError: the Pushgateway is unreachable or refused the push.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    Gauge(
        "mlops_cd_event_timestamp_seconds",
        "When this CD event last happened (promotion applied/failed, rollback, retrain).",
        registry=registry,
    ).set(time.time())
    if version is not None and version.isdigit():
        Gauge(
            "mlops_cd_model_version",
            "Version the environment got with this event.",
            registry=registry,
        ).set(int(version))
    grouping = {"model": model, "env": environment, "event": event}
    _push(url, CD_JOB, registry, grouping)
