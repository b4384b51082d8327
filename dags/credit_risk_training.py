"""Weekly (and on demand) retrain of the credit-risk model, with its gates; never promotes.

```
            ┌─► ingest ─► data_check ─► train ─► evaluate ─► performance_gate ─► register ─► open_pr
            │   (sha256)  (mlops data   (runs,    (scores the  (floors and     (version N  (PR:
data_source ┤              check)       champion  logged       ceilings of     from the    version N
(branch)    │                           run id)   artifact)    gates.yaml)     run)        promoted)
            └─► dvc_pull ─► dvc_repro ─► dvc_push ─► dvc_register ─► new_version ─► open_pipeline_pr
                (mlops data  (dvc.yaml:   (data to   (mlops data     (skips the     (PR: N,
                 pull)        ingest,      the DVC    register: the   PR when        dvc.lock and
                              validate,    remote)    lineage tags)   nothing        reports/)
                              train,                                  changed)
                              evaluate)
```

Two paths, as the `retrain` workflow has. With no ad-hoc input (the scheduled run: `data` and
`train_params` empty, `model` both) the DAG runs the DVC pipeline of the repository checkout
(`CREDIT_RISK_PROJECT_DIR`, a git clone with `.dvc/`): the data and params are the reviewed ones in
git, and the new `dvc.lock` and reports go into the promotion PR. When the data and params are
those of a registered version (`dvc repro` ran nothing), `dvc_register` registers nothing and
says which version holds them, and `new_version` skips the PR: the run succeeds. Given a data
URI, params or a single model, it runs the ad-hoc path: ingest of that URI (with its sha256), the
data gate and training outside the pipeline. `data_source` picks one; the other path's tasks are
skipped.

DVC takes a lock on its repository, so the four DVC tasks run in the Airflow pool `DVC_POOL`
(one slot; `airflow pools set credit_risk_dvc 1 "..."`, docs/airflow.md): two of them never run
at once, even across DAGs that share the checkout.

Each task is one `mlops` verb (mlops_tasks.py). What a task needs comes from the XCom of
the task that produced it: the staged data's path and sha256 from `ingest`, the champion run id
from `train`, the version from `register` / `dvc_register`, so a concurrent retrain cannot slip
another version in between. Promotion stays a reviewed pull request: the last task opens it.

Failures: bad input, a failed gate or a crossed threshold fail the task at once (no retry; the
verb's exit code says which); a registry or GitHub error is retried. Any final failure notifies
`retrain.failed` with the task and the reason, a PR task's success notifies
`retrain.registered` with the version and the PR link (both through `mlops notify`). Time limits:
`execution_timeout` per task, `dagrun_timeout` for the run, and a deadline alert (Airflow 3.1+,
experimental) that notifies `retrain.late` when a run is still going 3 hours after it was queued
(Airflow 3 removed SLAs; `CREDIT_RISK_DEADLINE_HOURS`, 0 turns it off).

Trigger with parameters: `airflow dags trigger credit_risk_training --conf '{"data": "s3://...",
"data_sha256": "...", "model": "xgboost", "train_params": {"xgboost": {"max_depth": 4}}}'`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import BranchPythonOperator, ShortCircuitOperator
from airflow.sdk import DAG, Param, chain
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from mlops_tasks import (
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
# One slot: DVC locks its repository, so one DVC task at a time (created by the operator of the
# Airflow instance: `airflow pools set credit_risk_dvc 1 "DVC repository lock"`).
DVC_POOL = "credit_risk_dvc"


def data_source(params: dict[str, Any]) -> str:
    """The first task of the path this run takes: the DVC pipeline unless given ad-hoc input."""
    adhoc = params.get("data") or params.get("train_params") or params.get("model") != "both"
    return "ingest" if adhoc else "dvc_pull"


def made_a_new_version(changed: object) -> bool:
    """Whether `mlops data register` registered a version (else the PR task is skipped)."""
    return changed is True


with DAG(
    dag_id=DAG_ID,
    description="Retrain credit-risk (DVC pipeline or ad-hoc data): gates, register, PR.",
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
            "", type="string", description="Ad-hoc dataset (path, https://, s3://); '' = DVC."
        ),
        "data_sha256": Param("", type="string", description="sha256 of the uncompressed CSV."),
        "model": Param("both", enum=["both", "xgboost", "logreg"], description="Candidates."),
        "train_params": Param({}, type="object", description="Merged over config/train.yaml."),
    },
    user_defined_macros=MACROS,
    tags=["credit-risk", "training"],
    doc_md=__doc__,
) as dag:
    choose = BranchPythonOperator(
        task_id="data_source",
        python_callable=data_source,  # Airflow passes the context's `params` by name
        retries=0,
    )
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
    chain(choose, ingest, data_check, train, evaluate, performance_gate, register, open_pr)

    # The DVC pipeline (dvc.yaml) in the checkout; each DVC task holds the pool's one slot. They
    # run where the git checkout and .venv-dvc are (needs_git), never in the train image.
    dvc: dict[str, Any] = {"pool": DVC_POOL, "needs_git": True}
    dvc_pull = mlops_task("dvc_pull", ["data", "pull"], json_result=False, **dvc)
    dvc_repro = mlops_task(
        "dvc_repro",
        ["data", "repro"],
        json_result=False,
        execution_timeout=timedelta(hours=2),
        **dvc,
    )
    dvc_push = mlops_task("dvc_push", ["data", "push"], json_result=False, **dvc)
    dvc_register = mlops_task("dvc_register", ["data", "register", "--json"], **dvc)
    new_version = ShortCircuitOperator(
        task_id="new_version",
        python_callable=made_a_new_version,
        op_args=[xcom(dvc_register, "changed")],
    )
    open_pipeline_pr = mlops_task(
        "open_pipeline_pr",
        ["pr", "open", "--version", xcom(dvc_register, "version"),
         "--include", "dvc.lock", "--include", "reports", "--json"],
        needs_git=True,
        on_success_callback=notify_registered,
    )  # fmt: skip
    chain(choose, dvc_pull, dvc_repro, dvc_push, dvc_register, new_version, open_pipeline_pr)
