"""Hourly prediction-drift check of the served credit-risk model: `mlops monitor drift`.

One task: the serving prediction logs of the run's data interval (`--window 1h --end
data_interval_end`, so a rerun or a backfill checks the same hour) against the reference sample
of the version that served them, with the reviewed thresholds of config/monitoring.yaml. The verb
writes the HTML report and the JSON summary into the run's folder, pushes the figures to the
Pushgateway when `MLOPS_PUSHGATEWAY_URL` is set, and on a breach notifies `drift.breach` with the
drifted features itself and exits 15: the task fails without retry (a threshold crossed is a
finding, not a transient error). A job that breaks for another reason (logs unreadable, registry
down) is retried, then notifies `drift.failed`. Without `CREDIT_RISK_DRIFT_LOGS` the task is
skipped, as the nightly workflow's drift job is until `DRIFT_LOGS` is configured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG
from mlops_tasks import MACROS, failure_notifier, mlops_task

with DAG(
    dag_id="credit_risk_monitoring",
    description="Hourly drift of served inputs and scores against the version's reference.",
    schedule="@hourly",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),  # before the next hour's run is due
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=30),
        # exit 15: the verb already sent `drift.breach` with the figures
        "on_failure_callback": failure_notifier("drift.failed", skip_exit_codes=(15,)),
    },
    user_defined_macros=MACROS,
    tags=["credit-risk", "monitoring"],
    doc_md=__doc__,
) as dag:
    drift = mlops_task(
        "drift",
        ["monitor", "drift", "--logs", "{{ setting('drift_logs') }}", "--window", "1h",
         "--end", "{{ (data_interval_end or dag_run.run_after).isoformat() }}",
         "--out", "{{ run_dir(dag.dag_id, run_id) }}/drift", "--notify"],
        json_result=False,
        requires=("drift_logs",),
    )  # fmt: skip
