"""Weekly (and on demand) retrain of the credit-risk model, with its gates; never promotes.

```
ingest ─► data_check ─► train ─► evaluate ─► performance_gate ─► register ─► open_pr
(sha256)  (mlops data   (runs,    (scores the  (floors/ceilings   (version N  (promotions.yaml
           check: a      champion  logged       of config/        from the    → N on a branch,
           breach fails  run id)   artifact)    gates.yaml)       run)        PR; never merged)
           the run)
```

Each task is one `mlops` verb (credit_risk_mlops.py). What a task needs comes from the XCom of
the task that produced it: the staged data's path and sha256 from `ingest`, the champion run id
from `train`, the version from `register`, so a concurrent retrain cannot slip another version
in between. Promotion stays a reviewed pull request: the last task opens it and stops.

Failures: bad input, a failed gate or a crossed threshold fail the task at once (no retry; the
verb's exit code says which); a registry or GitHub error is retried. Any final failure notifies
`retrain.failed` with the task and the reason, the PR task's success notifies
`retrain.registered` with the version and the PR link (both through `mlops notify`). Time limits:
`execution_timeout` per task, `dagrun_timeout` for the run, and a deadline alert (Airflow 3.1+,
experimental) that notifies `retrain.late` when a run is still going 3 hours after it was queued
(Airflow 3 removed SLAs; `CREDIT_RISK_DEADLINE_HOURS`, 0 turns it off).

Trigger with parameters: `airflow dags trigger credit_risk_training --conf '{"data": "s3://...",
"data_sha256": "...", "model": "xgboost", "train_params": {"xgboost": {"max_depth": 4}}}'`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, chain
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from credit_risk_mlops import (
    MACROS,
    deadline_hours,
    failure_notifier,
    mlops_task,
    notify_deadline_missed,
    notify_registered,
    xcom,
)

DAG_ID = "credit_risk_training"
RUN_DIR = "{{ run_dir(dag.dag_id, run_id) }}"
# Notify `retrain.late` when a run is still going this long after it was queued.
DEADLINE = deadline_hours()

with DAG(
    dag_id=DAG_ID,
    description="Retrain credit-risk: data gate, train, evaluate, performance gate, register, PR.",
    schedule="0 3 * * 1",  # weekly, Mondays 03:00 UTC; trigger by hand any time
    start_date=datetime(2025, 1, 6, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # two retrains at once would race for the promotion branch
    dagrun_timeout=timedelta(hours=4),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=DEADLINE,
        callback=SyncCallback(
            notify_deadline_missed, kwargs={"event": "retrain.late", "dag_id": DAG_ID}
        ),
    )
    if DEADLINE
    else None,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=20),
        "on_failure_callback": failure_notifier("retrain.failed"),
    },
    params={
        "data": Param(
            "", type="string", description="Dataset (path, https://, s3://); '' = default."
        ),
        "data_sha256": Param("", type="string", description="sha256 of the uncompressed CSV."),
        "model": Param("both", enum=["both", "xgboost", "logreg"], description="Candidates."),
        "train_params": Param({}, type="object", description="Merged over config/train.yaml."),
    },
    user_defined_macros=MACROS,
    tags=["credit-risk", "training"],
    doc_md=__doc__,
) as dag:
    ingest = mlops_task(
        "ingest",
        ["data", "ingest", "--data", "{{ params.data }}",
         "--data-sha256", "{{ params.data_sha256 }}", "--out", f"{RUN_DIR}/data", "--json"],
    )  # fmt: skip
    data_check = mlops_task(
        "data_check",
        ["data", "check", "--current", xcom(ingest, "path"),
         "--reference", "{{ setting('data_reference') }}", "--out", f"{RUN_DIR}/data-check"],
        json_result=False,
    )  # fmt: skip
    train = mlops_task(
        "train",
        ["train", "--no-register", "--json", "--model", "{{ params.model }}",
         "--params", "{{ params.train_params | tojson }}",
         "--data", xcom(ingest, "source"), "--data-sha256", xcom(ingest, "sha256")],
        execution_timeout=timedelta(hours=2),
    )  # fmt: skip
    evaluate = mlops_task("evaluate", ["evaluate", "--run", xcom(train, "run_id"), "--json"])
    performance_gate = mlops_task(
        "performance_gate", ["gate", "--run", xcom(train, "run_id"), "--json"]
    )
    register = mlops_task("register", ["register", "--run", xcom(train, "run_id"), "--json"])
    open_pr = mlops_task(
        "open_pr",
        ["pr", "open", "--version", xcom(register, "version"),
         "--clone", "{{ setting('git_remote') }}", "--json"],
        needs_git=True,
        on_success_callback=notify_registered,
    )  # fmt: skip
    chain(ingest, data_check, train, evaluate, performance_gate, register, open_pr)
