"""Hourly monitoring of the served credit-risk model: `mlops monitor drift`, then
`mlops monitor fairness`.

drift: the serving prediction logs of the run's data interval (`--window 1h --end
data_interval_end`, so a rerun or a backfill checks the same hour) against the reference sample
of the version that served them, with the reviewed thresholds of config/monitoring.yaml. The verb
writes the HTML report and the JSON summary into the run's folder, pushes the figures to the
Pushgateway when `MLOPS_PUSHGATEWAY_URL` is set, and on a breach notifies `drift.breach` with the
drifted features itself and exits 15: the task fails without retry (a threshold crossed is a
finding, not a transient error). A job that breaks for another reason (logs unreadable, registry
down) is retried, then notifies `drift.failed`. Without `CREDIT_RISK_DRIFT_LOGS` the task is
skipped, as the nightly workflow's drift job is until `DRIFT_LOGS` is configured.

fairness (after drift, whatever drift found): the approval rate per protected group of the
decisions served in the last 24 hours up to the run's data interval end (a day: an hour holds too
few decisions per group to judge), against each reference group, with the bounds of
config/gates.yaml. It pushes the figures to the Pushgateway like drift (`MLOPS_PUSHGATEWAY_URL`),
where the `ApprovalRatioBelowFourFifths` rule (monitoring/prometheus/rules/governance.yml) alerts
on a breach; the verb then exits 15 and the task fails without a second notification. Another
failure is retried, then notifies `fairness.failed`.
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
    fairness = mlops_task(
        "fairness",
        ["monitor", "fairness", "--logs", "{{ setting('drift_logs') }}", "--window", "24h",
         "--end", "{{ (data_interval_end or dag_run.run_after).isoformat() }}"],
        json_result=False,
        requires=("drift_logs",),
        trigger_rule="all_done",  # a drift breach (exit 15) says nothing about fairness
        # exit 15: the figures are pushed and the alert rule fires on the breach
        on_failure_callback=failure_notifier("fairness.failed", skip_exit_codes=(15,)),
    )  # fmt: skip
    drift >> fairness
