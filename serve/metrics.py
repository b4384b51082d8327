"""Prometheus instruments, one registry per app (tests build many apps in one process).

With SERVE_WORKERS > 1 each worker exposes its own counters; scrape each worker or run one
worker per container (the usual layout on ECS/Kubernetes).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
MAX_SCORE_VERSIONS = 4
SMALL_BATCH = 16  # up to this many scores per request, observed without numpy


class _ScoreSeries:
    __slots__ = ("approvals", "buckets", "count", "total")

    def __init__(self, size: int) -> None:
        self.buckets = np.zeros(size, dtype=np.int64)  # per bucket, not cumulative; last is +Inf
        self.total = 0.0
        self.count = 0
        self.approvals = 0


class ScoreMetrics(Collector):
    """`serve_score` (histogram of the PD) and `serve_approvals_total`, per model version.

    One `observe` per request, whatever its size: a searchsorted and a bincount over the batch,
    then one locked update, instead of a locked `Histogram.observe` per record. Only the last
    `MAX_SCORE_VERSIONS` versions keep series (a rollback back and forth cannot grow them), and
    the version label comes from the registry, never from a client. The approval rate is
    `serve_approvals_total / serve_score_count`.
    """

    def __init__(self, bounds: tuple[float, ...] = SCORE_BUCKETS) -> None:
        self._bounds = np.asarray(bounds, dtype=np.float64)
        self._bound_list = [float(b) for b in bounds]
        self._labels = [f"{b:g}" for b in bounds] + ["+Inf"]
        self._series: OrderedDict[str, _ScoreSeries] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, version: str, scores: np.ndarray, threshold: float) -> None:
        """Count one request's scores; approved means below `threshold` (as the decisions)."""
        small = len(scores) <= SMALL_BATCH
        if small:
            # Plain Python for a few scores: five numpy calls cost ~10 µs, 3 % of a one-record
            # request (bench-serve showed it).
            values = scores.tolist()
            indices = [bisect_left(self._bound_list, v) for v in values]
            total = float(sum(values))
            approvals = sum(1 for v in values if v < threshold)
        else:
            per_bucket = np.bincount(
                np.searchsorted(self._bounds, scores, side="left"), minlength=len(self._labels)
            )
            total = float(scores.sum())
            approvals = int(np.count_nonzero(scores < threshold))
        with self._lock:
            series = self._series.get(version)
            if series is None:
                series = self._series[version] = _ScoreSeries(len(self._labels))
                while len(self._series) > MAX_SCORE_VERSIONS:
                    self._series.popitem(last=False)
            if small:
                for i in indices:
                    series.buckets[i] += 1
            else:
                series.buckets += per_bucket
            series.total += total
            series.count += len(scores)
            series.approvals += approvals

    def collect(self) -> Iterator[Metric]:
        """The two families, read under the lock."""
        histogram = HistogramMetricFamily(
            "serve_score", "Predicted probability of default.", labels=["version"]
        )
        approvals = CounterMetricFamily(
            "serve_approvals", "Records approved (PD below the threshold).", labels=["version"]
        )
        with self._lock:
            rows = [
                (v, np.cumsum(s.buckets).tolist(), s.total, s.approvals)
                for v, s in self._series.items()
            ]
        for version, cumulative, total, approved in rows:
            histogram.add_metric([version], list(zip(self._labels, cumulative, strict=True)), total)
            approvals.add_metric([version], approved)
        yield histogram
        yield approvals


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "serve_requests", "HTTP requests.", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "serve_request_latency_seconds",
            "Request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "serve_predictions", "Scored records by decision.", ["decision"], registry=r
        )
        # Bound once: `labels()` costs a lock and a dict lookup per call.
        self._declined = self.predictions.labels("decline")
        self._approved = self.predictions.labels("approve")
        self.batch_size = Histogram(
            "serve_batch_records",
            "Records per /predict request.",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000),
            registry=r,
        )
        self.model_info = Gauge(
            "serve_model_info",
            "The model being served (value 1).",
            ["name", "version", "alias", "source"],
            registry=r,
        )
        self.reloads = Counter("serve_model_reloads", "Successful model swaps.", registry=r)
        self.reload_failures = Counter(
            "serve_model_reload_failures", "Failed model loads.", registry=r
        )
        self.registry_up = Gauge(
            "serve_registry_up", "1 if the last registry poll answered.", registry=r
        )
        self.scores = ScoreMetrics()
        r.register(self.scores)
        # The online feature store (/predict/by-id); untouched while it is off.
        self.feature_store_up = Gauge(
            "serve_feature_store_up", "1 if the feature store's Redis answered last.", registry=r
        )
        self.feature_snapshot = Gauge(
            "serve_feature_snapshot_info",
            "The feature snapshot /predict/by-id reads (value 1).",
            ["feature_set", "snapshot", "contract_id", "data_version"],
            registry=r,
        )
        self.feature_fetch = Histogram(
            "serve_feature_fetch_seconds",
            "Time to fetch one request's feature vectors from Redis (one round trip).",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
            registry=r,
        )
        self.feature_lookups = Counter(
            "serve_feature_lookups",
            "Applicant ids looked up by /predict/by-id, by result.",
            ["result"],
            registry=r,
        )

    def count_predictions(self, decisions: list[str]) -> None:
        """Count one request's decisions and its size."""
        declines = decisions.count("decline")
        if declines:
            self._declined.inc(declines)
        if len(decisions) > declines:
            self._approved.inc(len(decisions) - declines)
        self.batch_size.observe(len(decisions))

    def observe_scores(self, version: str, scores: np.ndarray, threshold: float) -> None:
        """Score histogram and approvals of one request, per model version (one call)."""
        self.scores.observe(version, scores, threshold)

    def set_feature_snapshot(self, feature_set: str, snapshot: Any) -> None:
        """Point serve_feature_snapshot_info at the snapshot now read (a SnapshotInfo)."""
        self.feature_snapshot.clear()
        self.feature_snapshot.labels(
            feature_set=feature_set,
            snapshot=str(snapshot.snapshot),
            contract_id=snapshot.contract_id,
            data_version=snapshot.data_version,
        ).set(1)

    def set_model(self, name: str, version: str, alias: str | None, source: str) -> None:
        """Point serve_model_info at the new model only."""
        self.model_info.clear()
        self.model_info.labels(name=name, version=version, alias=alias or "", source=source).set(1)
