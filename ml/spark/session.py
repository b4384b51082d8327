"""The SparkSession of a run: one per process, built once, small-run defaults for `local[N]`.

On a cluster (spark-submit on EMR Serverless, Databricks) the master and resources come from the
submitter; `spark_session` then only names the application and turns Arrow on. Locally it keeps
the session light: no UI, the driver bound to 127.0.0.1, few shuffle partitions.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_cores(master: str) -> int:
    """The task slots of a `local`, `local[N]`, `local[*]` or `local[N,F]` master."""
    inside = master[len("local[") : -1].split(",")[0] if master.startswith("local[") else "1"
    if inside == "*":
        return os.cpu_count() or 1
    return max(1, int(inside or 1))


def spark_session(master: str = "local[2]", app_name: str = "credit-risk") -> SparkSession:
    """The process's SparkSession, created on first use (later calls return the same one).

    Args:
        master: `local[N]` for a run on this machine; a cluster master URL; or "" to take it
            from spark-submit (`--master`), as a job submitted to EMR Serverless does.
        app_name: the application's name in the cluster's UI and logs.

    Raises:
        ConfigError: pyspark (the `spark` extra) is not installed, or the JVM did not start.
    """
    from ml.errors import ConfigError

    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            "Spark needs the spark extra: `uv sync --extra spark` (pyspark and a Java 17 runtime)"
        ) from exc
    # The executors' Python is the driver's (its environment has ml, xgboost and pyarrow),
    # unless spark-submit or the cluster says otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    if master.startswith("local"):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.showConsoleProgress", "false")
            # One wave of tasks, one per core: the input's bytes split evenly across the cores
            # (one 625 MB file on local[2] is otherwise five 128 MB tasks, the fifth alone on
            # one core; and each extra task pays a Python worker's start-up, measured at about
            # half the scoring wall time on 2 M rows with four tasks per core).
            .config("spark.sql.files.maxPartitionBytes", str(1 << 40))
            .config("spark.sql.files.minPartitionNum", str(local_cores(master)))
        )
    builder = (
        builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Arrow batches of ~33k rows, as the local engine's chunks: XGBoost's per-call cost is
        # negligible there, and a batch's memory stays small.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "32768")
    )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: name the fix, not a Java stack
        raise ConfigError(
            f"cannot start Spark (master {master or 'from spark-submit'}): "
            f"{str(exc).splitlines()[0][:200]} (hint: install Java 17, set JAVA_HOME)"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark
