"""Prometheus instruments, one registry per app (tests build many apps in one process).

With SERVE_WORKERS > 1 each worker exposes its own counters; scrape each worker or run one
worker per container (the usual layout on ECS/Kubernetes).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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

    def count_predictions(self, decisions: list[str]) -> None:
        """Count one request's decisions and its size."""
        declines = decisions.count("decline")
        if declines:
            self._declined.inc(declines)
        if len(decisions) > declines:
            self._approved.inc(len(decisions) - declines)
        self.batch_size.observe(len(decisions))

    def set_model(self, name: str, version: str, alias: str | None, source: str) -> None:
        """Point serve_model_info at the new model only."""
        self.model_info.clear()
        self.model_info.labels(name=name, version=version, alias=alias or "", source=source).set(1)
