"""`mlops spark submit`: run a training or scoring job on EMR Serverless and wait for its end.

The job is an `mlops` verb run by `ml/spark/entry.py` on the application's driver, with the
code bundle (`mlops spark bundle`: the packages, config and data) and the packed virtualenv
under the batch bucket's `code/` prefix (docs/spark.md): `train` is `mlops train` with the
Spark backend on the job's own session, `score` is `mlops predict --engine spark`. Whatever
follows `--` on the command line is passed to that verb unchanged.

Waiting is bounded: the job is polled until it ends or `timeout_minutes` pass; at the deadline
it is cancelled (a forgotten job keeps costing) and the verb fails. Each end has its own exit
code (ml/errors.py): 21 failed, 22 cancelled, 23 timed out (cancelled by us).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.errors import ConfigError, SparkJobCancelledError, SparkJobError, SparkJobTimeoutError
from ml.spark.bundle import CODE_ZIP, ENTRY, PROJECT_ARCHIVE
from ml.spark.emr_serverless import EmrServerless, JobRunState

JobKind = Literal["train", "score"]
# The mlops verb each job runs on the driver (ml/spark/entry.py).
VERBS: dict[JobKind, list[str]] = {
    "train": ["train", "--json"],
    "score": ["predict", "--engine", "spark"],
}
VENV_ARCHIVE = "venv.tar.gz"  # third-party packages, built per architecture (docs/spark.md)


class SparkJobSettings(BaseSettings):
    """Where jobs run (the platform root's `spark` output) and how long a caller waits."""

    model_config = SettingsConfigDict(env_prefix="ML_SPARK_", extra="ignore")

    application_id: str | None = Field(default=None, description="EMR Serverless application.")
    job_role_arn: str | None = Field(default=None, description="Job execution role ARN.")
    code_uri: str | None = Field(
        default=None, description="s3:// prefix holding entry.py, venv.tar.gz, project.tar.gz."
    )
    log_uri: str | None = Field(default=None, description="s3:// prefix for the job's logs.")
    registry_secret_arn: str | None = Field(
        default=None, description="Secret with the MLflow user the job reads the registry as."
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="The registry the job uses (MLFLOW_TRACKING_URI).",
    )
    region: str | None = Field(
        default=None, validation_alias="AWS_REGION", description="AWS region (AWS_REGION)."
    )
    timeout_minutes: int = Field(default=180, ge=1, le=24 * 60)
    poll_seconds: float = Field(default=15.0, gt=0)
    executors: int = Field(default=4, ge=1, description="Initial Spark executors of a job.")

    def require(self) -> tuple[str, str, str]:
        """(application id, role ARN, code URI), or a ConfigError naming each missing one."""
        missing = [
            f"ML_SPARK_{name.upper()}"
            for name in ("application_id", "job_role_arn", "code_uri")
            if not getattr(self, name)
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set (hint: the platform root's `spark` output names "
                "the application, the job role and the code prefix; set spark_enabled first)"
            )
        code = str(self.code_uri)
        if not code.startswith("s3://"):
            raise ConfigError(f"ML_SPARK_CODE_URI must be an s3:// prefix, got {code!r}")
        return str(self.application_id), str(self.job_role_arn), code.rstrip("/") + "/"


@dataclass(frozen=True)
class JobRequest:
    """What a job run is started with (the adapter's `start` arguments)."""

    name: str
    entry_point: str
    arguments: list[str]
    submit_parameters: str


def job_request(settings: SparkJobSettings, job: JobKind, extra: Sequence[str]) -> JobRequest:
    """The spark-submit of `job`: the entry point, the verb's arguments and the driver's env."""
    _, _, code = settings.require()
    python = "./environment/bin/python"
    driver_env = {"PYSPARK_PYTHON": python}
    if settings.tracking_uri:
        driver_env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    if settings.registry_secret_arn:
        driver_env["ML_SPARK_REGISTRY_SECRET_ARN"] = settings.registry_secret_arn
    if settings.region:
        driver_env["AWS_REGION"] = settings.region
    conf = {
        "spark.archives": f"{code}{VENV_ARCHIVE}#environment,{code}{PROJECT_ARCHIVE}#project",
        "spark.submit.pyFiles": f"{code}{CODE_ZIP}",
        "spark.executorEnv.PYSPARK_PYTHON": python,
        "spark.executor.instances": str(settings.executors),
        # XGBoost's workers are barrier tasks: they all start at once or not at all.
        "spark.dynamicAllocation.enabled": "false",
        **{f"spark.emr-serverless.driverEnv.{k}": v for k, v in sorted(driver_env.items())},
    }
    submit = " ".join(f"--conf {key}={value}" for key, value in conf.items())
    arguments = [*VERBS[job], *extra]
    return JobRequest(f"credit-risk-{job}", f"{code}{ENTRY}", arguments, submit)


def _token(request: JobRequest) -> str:
    """Idempotency token: the same request within one minute starts one run, not two."""
    minute = int(time.time() // 60)
    text = "\n".join([request.entry_point, *request.arguments, str(minute)])
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def wait(
    emr: EmrServerless,
    run_id: str,
    timeout_s: float,
    poll_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[JobRunState], None] = lambda _state: None,
    logs: str = "",
) -> JobRunState:
    """Poll the run until it ends; SUCCESS returns, every other end raises its error.

    Raises:
        SparkJobError: FAILED (exit 21).
        SparkJobCancelledError: CANCELLED by someone else (exit 22).
        SparkJobTimeoutError: still running at the deadline; the run was cancelled (exit 23).
    """
    deadline = clock() + timeout_s
    where = f" (logs: {logs})" if logs else ""
    while True:
        state = emr.describe(run_id)
        progress(state)
        if state.state == "SUCCESS":
            return state
        if state.state == "FAILED":
            raise SparkJobError(
                f"Spark job {run_id} failed: {state.details or 'no details given'}{where}"
            )
        if state.state == "CANCELLED":
            raise SparkJobCancelledError(
                f"Spark job {run_id} was cancelled: {state.details or 'no details given'}{where}"
            )
        if clock() >= deadline:
            emr.cancel(run_id)
            raise SparkJobTimeoutError(
                f"Spark job {run_id} still {state.state} after {timeout_s / 60:.0f} min: "
                f"cancelled it (hint: raise ML_SPARK_TIMEOUT_MINUTES or the application's "
                f"capacity){where}"
            )
        sleep(min(poll_s, max(0.0, deadline - clock())))


@dataclass(frozen=True)
class Submitted:
    """A job run and how it ended (`state` is None when the caller did not wait)."""

    run_id: str
    application_id: str
    request: JobRequest
    state: JobRunState | None
    logs: str


def submit(
    settings: SparkJobSettings,
    job: JobKind,
    extra: Sequence[str] = (),
    *,
    wait_for_end: bool = True,
    emr: EmrServerless | None = None,
    progress: Callable[[JobRunState], None] = lambda _state: None,
) -> Submitted:
    """Start `job` on the application and (by default) wait until it ends."""
    application, role, _ = settings.require()
    request = job_request(settings, job, extra)
    emr = emr or EmrServerless(application, settings.region)
    run_id = emr.start(
        name=request.name,
        role_arn=role,
        entry_point=request.entry_point,
        arguments=request.arguments,
        submit_parameters=request.submit_parameters,
        log_uri=settings.log_uri,
        # EMR Serverless stops the job itself a little after our deadline, should we die.
        timeout_minutes=settings.timeout_minutes + 10,
        client_token=_token(request),
    )
    logs = (
        f"{settings.log_uri.rstrip('/')}/applications/{application}/jobs/{run_id}/"
        if settings.log_uri
        else f"CloudWatch /aws/emr-serverless, job {run_id}"
    )
    state = None
    if wait_for_end:
        state = wait(
            emr,
            run_id,
            settings.timeout_minutes * 60,
            settings.poll_seconds,
            progress=progress,
            logs=logs,
        )
    return Submitted(run_id, application, request, state, logs)
