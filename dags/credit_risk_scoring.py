"""Nightly scoring of the whole book on Spark: `mlops spark submit --job score`.

One task: an EMR Serverless job (`ml/spark/submit.py`) that runs `mlops predict --engine spark`
with the production model over the book (`CREDIT_RISK_BOOK_URI`, Parquet under the batch
bucket's input/ prefix) into a folder per night under `CREDIT_RISK_SCORES_URI` (`.../<ds>/`:
a rerun or a backfill rewrites that night's folder, never another). The task waits for the job:
it succeeds when the job does; a failed job (exit 21) is retried once, a job cancelled by a
person (22) or past ML_SPARK_TIMEOUT_MINUTES (23, cancelled) is not. Either end notifies
`scoring.failed`. Without the two URIs the task is skipped (a team that has not turned on
spark_enabled).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG
from mlops_tasks import MACROS, failure_notifier, mlops_task

with DAG(
    dag_id="credit_risk_scoring",
    description="Nightly Spark scoring of the book with the production model (EMR Serverless).",
    schedule="0 1 * * *",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=15),
        # Above the job's own wait (ML_SPARK_TIMEOUT_MINUTES, 3 h by default): the verb
        # cancels a late job itself and says so, rather than being killed mid-wait.
        "execution_timeout": timedelta(hours=4),
        "on_failure_callback": failure_notifier("scoring.failed"),
    },
    user_defined_macros=MACROS,
    tags=["credit-risk", "scoring", "spark"],
    doc_md=__doc__,
) as dag:
    score = mlops_task(
        "score_book",
        ["spark", "submit", "--job", "score", "--json", "--",
         "--input", "{{ setting('book_uri') }}",
         "--output", "{{ setting('scores_uri').rstrip('/') }}/{{ ds }}/",
         "--model", "{{ setting('model_name') }}@production"],
        requires=("book_uri", "scores_uri"),
    )  # fmt: skip
