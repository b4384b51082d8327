"""`mlops monitor drift`, `mlops data check` and `mlops notify`: parse, call, print.

The work is in `ml.monitoring` and `ml.notify`. A crossed threshold exits 15 (`MonitoringBreach`)
after the report and summary are written, the figures pushed and the notification sent; pushing
and notifying report on the job and never change its exit code. The report and the summary are
written to temporaries and renamed together at the end (ml.atomic_output), credentials masked.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ml.cli.base import console, err_console, mlops_command
from ml.errors import ConfigError, MonitoringBreach

if TYPE_CHECKING:
    from ml.atomic_output import AtomicOutputs
    from ml.monitoring.engine import Comparison

monitor_app = typer.Typer(
    help="Prediction drift of the served model (Evidently).", no_args_is_help=True
)

ConfigOption = Annotated[
    Path, typer.Option("--config", help="Reviewed thresholds.", show_default=True)
]
OutOption = Annotated[
    Path, typer.Option("--out", help="Folder for the HTML report and the JSON summary.")
]
PushOption = Annotated[
    str | None,
    typer.Option(
        "--pushgateway",
        envvar="MLOPS_PUSHGATEWAY_URL",
        help="Prometheus Pushgateway URL to push the figures to (MLOPS_PUSHGATEWAY_URL).",
    ),
]
NotifyOption = Annotated[
    bool,
    typer.Option("--notify", help="On a breach, send the summary to NOTIFY_WEBHOOK_URL."),
]


def _run_url() -> str | None:
    """This GitHub Actions run, when there is one (linked from notifications)."""
    server, repo, run = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(
            f"bad time {text!r}: use ISO 8601 (2025-01-31T00:00:00Z) or epoch seconds"
        ) from None


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['kind']}: {summary['status']}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    if "version" in summary:
        table.add_row("model", f"{summary['model']} v{summary['version']}")
    rows = summary["rows"]
    table.add_row("rows", f"{rows['current']} current, {rows['reference']} reference")
    drift = summary["drift"]
    drifted = ", ".join(drift["drifted"]) or "none"
    table.add_row("drift share", f"{drift['share']:.3f} (max {drift['max_share']}): {drifted}")
    if summary.get("score"):
        table.add_row(
            "score PSI", f"{summary['score']['psi']:.4f} (max {summary['score']['max_psi']})"
        )
    if summary.get("approval_rate"):
        a = summary["approval_rate"]
        shift = f"{a['current']:.3f} vs reference {a['reference']:.3f} (max shift {a['max_shift']})"
        table.add_row("approval rate", shift)
    for breach in summary["breaches"]:
        named = f" ({', '.join(breach['features'])})" if breach["features"] else ""
        table.add_row(
            "[red]breach[/]",
            escape(f"{breach['check']} {breach['value']:.4g} > {breach['threshold']}{named}"),
        )
    return table


def _step_summary(summary: dict[str, Any], title: str) -> None:
    """Append a short markdown summary to the GitHub job summary, when in Actions."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    lines = [f"### {title}: {summary['status']}", ""]
    for b in summary["breaches"]:
        lines.append(
            f"- {b['check']}: {b['value']:.4g} > {b['threshold']} {', '.join(b['features'])}"
        )
    lines.append(
        f"- drift share {summary['drift']['share']:.3f}; rows {summary['rows']['current']}"
    )
    with open(target, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def finish_outputs(
    outputs: AtomicOutputs, out: Path, report_name: str, summary_name: str, summary: dict[str, Any]
) -> None:
    """The summary names the files' final places; write it (masked) and rename both into place."""
    import json

    from ml.atomic_output import write_errors
    from serve.redaction import redact

    summary["report"] = str(out / report_name)
    if _run_url():
        summary["report_url"] = _run_url()
    target = out / summary_name
    with write_errors(target):
        outputs.temporary(target).write_text(
            redact(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        )
    outputs.commit()


def report_comparison(
    comparison: Comparison,
    *,
    out: Path,
    summary_name: str,
    event: str,
    pushgateway: str | None,
    notify: bool,
) -> None:
    """Print, push, notify; then exit 15 on a breach."""
    from ml.monitoring.engine import Breach

    summary = comparison.summary
    console.print(_table(summary))
    console.print(f"report  {summary['report']}\nsummary {out / summary_name}")
    _step_summary(summary, event.split(".")[0].replace("_", " "))
    if pushgateway:
        from ml.monitoring.pushgateway import PushError, push_drift

        try:
            push_drift(pushgateway, summary)
            console.print("pushed the figures to the Pushgateway")
        except PushError as exc:
            err_console.print(f"[yellow]warning:[/] {escape(str(exc))}")
    if comparison.breached:
        if notify:
            from ml.notify import drift_fields
            from ml.notify import notify as send

            sent = send(event, drift_fields(summary))
            console.print("notified" if sent else "notification not sent (see the warning)")
        raise MonitoringBreach(
            f"{summary['kind']} breach: "
            + "; ".join(
                Breach(**{**b, "features": tuple(b["features"])}).describe()
                for b in summary["breaches"]
            )
            + f" (report {summary['report']})"
        )


@monitor_app.command("drift")
@mlops_command
def drift(
    logs: Annotated[
        str,
        typer.Option(
            "--logs",
            help="Serving prediction logs: a file, a folder, or s3://bucket/prefix "
            "(plain, gzip, or a CloudWatch Logs export).",
        ),
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (default: the most logged).")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Version to check (default: the one that served most)."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Reference file (parquet/CSV) instead of the version's logged reference.",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", help="Only requests in the last DURATION (24h, 90m, 7d)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the window (ISO 8601 or epoch; default: now)."),
    ] = None,
    out: OutOption = Path("build/monitoring"),
    config: ConfigOption = Path("config/monitoring.yaml"),
    pushgateway: PushOption = None,
    notify: NotifyOption = False,
) -> None:
    """Compare served inputs and scores with the version's reference; exit 15 on a breach."""
    from ml.atomic_output import AtomicOutputs
    from ml.monitoring.config import load_monitoring_config
    from ml.monitoring.drift import DRIFT_REPORT, DRIFT_SUMMARY, DriftRequest, run_drift
    from ml.monitoring.logs import Window, parse_duration
    from ml.settings import MLSettings

    settings = MLSettings()
    end_ts = _parse_time(end) if end else None
    span = Window()
    if window:
        stop = end_ts if end_ts is not None else time.time()
        span = Window(start=stop - parse_duration(window), end=stop)
    elif end_ts is not None:
        span = Window(end=end_ts)
    thresholds = load_monitoring_config(config)
    with AtomicOutputs([out / DRIFT_REPORT, out / DRIFT_SUMMARY], create_folders=True) as outputs:
        request = DriftRequest(
            logs=logs,
            tracking_uri=settings.resolved_tracking_uri(),
            out_dir=outputs.staging_folder(out),
            config=thresholds,
            window=span,
            model=model,
            version=version,
            reference=reference,
        )
        comparison = run_drift(request)
        finish_outputs(outputs, out, DRIFT_REPORT, DRIFT_SUMMARY, comparison.summary)
    report_comparison(
        comparison,
        out=out,
        summary_name=DRIFT_SUMMARY,
        event="drift.breach",
        pushgateway=pushgateway,
        notify=notify,
    )


def notify(
    event: Annotated[
        str,
        typer.Option(
            "--event",
            help="promotion.applied | promotion.failed | promotion.rolled_back | "
            "retrain.registered | retrain.failed | retrain.late | drift.breach | drift.failed | "
            "fairness.failed | data_check.breach",
        ),
    ],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="KEY=VALUE to show (model, version, env, release, pr, run)."),
    ] = None,
    pushgateway: PushOption = None,
) -> None:
    """Send one notification to NOTIFY_WEBHOOK_URL; never fails the step that calls it."""
    from ml.notify import EVENTS
    from ml.notify import notify as send

    fields: dict[str, str] = {}
    for item in field or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err_console.print(
                f"[yellow]warning:[/] ignoring --field {escape(item)!r}: use KEY=VALUE"
            )
            continue
        fields[key.strip()] = value
    if event not in EVENTS:
        err_console.print(
            f"[yellow]warning:[/] unknown event {escape(event)!r}; sent with a generic title "
            f"(known: {', '.join(EVENTS)})"
        )
    if send(event, fields):
        console.print(f"notified: {escape(event)}")
    else:
        err_console.print(f"[yellow]warning:[/] notification {escape(event)} not delivered")
    if pushgateway and "model" in fields and "env" in fields:
        from ml.monitoring.pushgateway import PushError, push_cd_event

        try:
            push_cd_event(pushgateway, event, fields["model"], fields["env"], fields.get("version"))
        except PushError as exc:
            err_console.print(f"[yellow]warning:[/] {escape(str(exc))}")


@monitor_app.command("fairness")
@mlops_command
def fairness(
    logs: Annotated[
        str,
        typer.Option("--logs", help="Serving prediction logs: a file, a folder or s3://prefix."),
    ],
    window: Annotated[
        str | None,
        typer.Option("--window", help="Only requests in the last DURATION (24h, 90m, 7d)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the window (ISO 8601 or epoch; default: now)."),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="Model name (gates, labels).")] = (
        "credit-risk"
    ),
    gates: Annotated[
        Path, typer.Option("--gates", help="The gates file with the fairness bounds.")
    ] = Path("config/gates.yaml"),
    governance: Annotated[
        Path, typer.Option("--governance", help="The reviewed governance file.")
    ] = Path("config/governance.yaml"),
    pushgateway: PushOption = None,
) -> None:
    """Approval rate per protected group over the served decisions, against each reference
    group (four-fifths rule); exit 15 when a group is below the bound (docs/governance.md)."""
    import json

    from ml.governance.card import reviewed_bounds
    from ml.governance.config import load_governance
    from ml.governance.monitoring import approval_by_group, push_fairness
    from ml.monitoring.logs import Window, parse_duration, read_predictions

    end_ts = _parse_time(end) if end else None
    span = Window()
    if window:
        stop = end_ts if end_ts is not None else time.time()
        span = Window(start=stop - parse_duration(window), end=stop)
    elif end_ts is not None:
        span = Window(end=end_ts)
    frame, _ = read_predictions(logs, span)
    summary = approval_by_group(frame, load_governance(governance), reviewed_bounds(gates, model))
    if pushgateway:
        push_fairness(pushgateway, model, summary)
    typer.echo(json.dumps(summary, sort_keys=True))
    if summary["breaches"]:
        raise MonitoringBreach("approval ratio below the bound: " + "; ".join(summary["breaches"]))
