"""Grafana dashboards as code (grafana-foundation-sdk, builders for Grafana 11.6).

Three dashboards on the provisioned Prometheus datasource (uid `prometheus`):
- serving: traffic, latency, errors, the version served, registry reachability;
- model: score distribution, approval rate per version, the drift job's figures per feature;
- CD: promotions, failures and rollbacks, and the version each environment got; these come from
  the CD events `mlops notify --pushgateway` pushes (`mlops_cd_*`), not from the registry.

`make dashboards` writes monitoring/grafana/dashboards/*.json; the generated JSON is committed
(Grafana provisions it in compose) and tests/unit/monitoring/test_dashboards.py fails when it is
not what this file generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
OUT = Path(__file__).resolve().parent / "dashboards"
API = 'job="credit-risk-api"'


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    """One PromQL target on the provisioned datasource."""
    target = Dataquery().expr(expr).ref_id(ref).datasource(PROMETHEUS)
    return target.legend_format(legend) if legend else target


def series(title: str, unit: str, *targets: Dataquery, width: int = 12) -> Timeseries:
    """A time-series panel."""
    panel = Timeseries().title(title).unit(unit).datasource(PROMETHEUS).height(8).span(width)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def quantiles(bucket_selector: str, qs: tuple[float, float, float]) -> list[Dataquery]:
    """p-quantiles of a histogram (`name_bucket{labels}`), one target each (refs A, B, C)."""
    return [
        query(
            f"histogram_quantile({q}, sum by (le) (rate({bucket_selector}[$__rate_interval])))",
            f"p{round(q * 100)}",
            ref,
        )
        for q, ref in zip(qs, "ABC", strict=True)
    ]


def stat(title: str, unit: str, target: Dataquery, width: int = 6) -> Stat:
    """A single-value panel."""
    return (
        Stat().title(title).unit(unit).datasource(PROMETHEUS).height(4).span(width)
        .with_target(target)
    )  # fmt: skip


def _base(title: str, uid: str, description: str) -> Dashboard:
    return (
        Dashboard(title).uid(uid).description(description).tags(["credit-risk", "generated"])
        .refresh("30s").time("now-6h", "now").timezone("utc").editable()
    )  # fmt: skip


def serving() -> Dashboard:
    """Traffic, latency, errors and the version served."""
    rate = "[$__rate_interval]"
    return (
        _base("credit-risk / serving", "credit-risk-serving", "The model API: `mlops serve`.")
        .with_row(Row("Now"))
        .with_panel(stat("Version served", "none",
                         query(f"max by (version) (serve_model_info{{{API}}})", "v{{version}}"))
                    .text_mode(BigValueTextMode.NAME))
        .with_panel(stat("Requests / s", "reqps",
                         query(f"sum(rate(serve_requests_total{{{API}}}{rate}))")))
        .with_panel(stat("5xx share", "percentunit", query(
            f'sum(rate(serve_requests_total{{{API},status=~"5.."}}{rate}))'
            f" / sum(rate(serve_requests_total{{{API}}}{rate}))")))
        .with_panel(stat("Registry reachable", "bool_yes_no",
                         query(f"min(serve_registry_up{{{API}}})")))
        .with_row(Row("Traffic and errors"))
        .with_panel(series("Requests by route and status", "reqps", query(
            f"sum by (route, status) (rate(serve_requests_total{{{API}}}{rate}))",
            "{{route}} {{status}}")))
        .with_panel(series("Records scored by decision", "ops", query(
            f"sum by (decision) (rate(serve_predictions_total{{{API}}}{rate}))", "{{decision}}")))
        .with_row(Row("Latency"))
        .with_panel(series("/predict latency", "s", *quantiles(
            f'serve_request_latency_seconds_bucket{{{API},route="/predict"}}', (0.5, 0.9, 0.99))))
        .with_panel(series("Records per request", "none", query(
            "histogram_quantile(0.9, sum by (le) "
            f"(rate(serve_batch_records_bucket{{{API}}}{rate})))", "p90")))
        .with_row(Row("Model swaps"))
        .with_panel(series("Reloads and failed loads", "short",
                           query(f"increase(serve_model_reloads_total{{{API}}}[1h])",
                                 "reloads", "A"),
                           query(f"increase(serve_model_reload_failures_total{{{API}}}[1h])",
                                 "failures", "B")))
    )  # fmt: skip


def model() -> Dashboard:
    """Scores, approval rate and drift per feature."""
    rate = "[$__rate_interval]"
    version = (
        QueryVariable("version").label("version").datasource(PROMETHEUS)
        .query("label_values(serve_score_count, version)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )  # fmt: skip
    return (
        _base("credit-risk / model", "credit-risk-model",
              "What the model outputs, and how production inputs compare with its reference.")
        .with_variable(version)
        .with_row(Row("Scores and approvals"))
        .with_panel(series("Approval rate by version", "percentunit", query(
            f"sum by (version) (rate(serve_approvals_total{{{API}}}{rate}))"
            f" / sum by (version) (rate(serve_score_count{{{API}}}{rate}))", "v{{version}}")))
        .with_panel(series("Score quantiles (version $version)", "percentunit", *quantiles(
            f'serve_score_bucket{{{API},version="$version"}}', (0.1, 0.5, 0.9))))
        .with_row(Row("Drift job (last run)"))
        .with_panel(stat("Drift share", "percentunit", query("max(mlops_drift_share)")))
        .with_panel(stat("Score PSI", "none", query("max(mlops_drift_score_psi)")))
        .with_panel(stat("Approval rate vs reference", "percentunit", query(
            "max(mlops_drift_approval_rate) - max(mlops_drift_reference_approval_rate)")))
        .with_panel(stat("Hours since the last run", "h", query(
            "(time() - max(mlops_drift_last_success_timestamp_seconds)) / 3600")))
        .with_panel(series("Drift score per feature", "none", query(
            "max by (feature) (mlops_drift_feature_score)", "{{feature}}"), width=24))
    )  # fmt: skip


def cd() -> Dashboard:
    """Promotions and rollbacks, from CD events pushed by `mlops notify --pushgateway`."""
    events = 'job="mlops_cd"'
    return (
        _base("credit-risk / CD", "credit-risk-cd",
              "Promotions, failures and rollbacks: CD events pushed by `mlops notify "
              "--pushgateway` (mlops_cd_*).")
        .with_row(Row("Versions"))
        .with_panel(series("Version per environment", "none", query(
            f"max by (env) (mlops_cd_model_version{{{events}}})", "{{env}}"), width=24))
        .with_row(Row("Events"))
        .with_panel(stat("Promotions (range)", "none", query(
            f'count(changes(mlops_cd_event_timestamp_seconds{{{events},event="promotion.applied"}}'
            "[$__range]) > 0) or vector(0)")))
        .with_panel(stat("Failed promotions (range)", "none", query(
            f'count(changes(mlops_cd_event_timestamp_seconds{{{events},event="promotion.failed"}}'
            "[$__range]) > 0) or vector(0)")))
        .with_panel(stat("Rollbacks (range)", "none", query(
            f"count(changes(mlops_cd_event_timestamp_seconds{{{events},"
            'event="promotion.rolled_back"}[$__range]) > 0) or vector(0)')))
        .with_panel(stat("Last promotion", "dateTimeFromNow", query(
            f'max(mlops_cd_event_timestamp_seconds{{{events},event="promotion.applied"}}) * 1000')))
        .with_panel(series("Last event time by environment and event", "dateTimeAsIso", query(
            f"max by (env, event) (mlops_cd_event_timestamp_seconds{{{events}}}) * 1000",
            "{{env}} {{event}}"), width=24))
    )  # fmt: skip


DASHBOARDS = {"serving": serving, "model": model, "cd": cd}


def render() -> dict[str, str]:
    """File name → JSON text, stable (sorted keys) so the committed files diff cleanly."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {
        f"credit-risk-{name}.json": encoder.encode(build().build()) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check say which committed files are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="Exit 1 if a file is not current.")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        json.loads(text)  # the encoder's output must be JSON
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"stale dashboards (run `make dashboards`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
