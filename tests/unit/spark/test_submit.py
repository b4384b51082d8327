"""`mlops spark submit`: the job request EMR Serverless receives, and each way a job ends.

The happy path runs against moto's EMR Serverless in-process (it records the application and the
job run; its runs end SUCCESS at once and run nothing). Failed, cancelled and still-running jobs
cannot be made in moto: a stand-in plays the job's states there, the one boundary mocked here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import SparkJobCancelledError, SparkJobError, SparkJobTimeoutError
from ml.spark.emr_serverless import JobRunState
from ml.spark.submit import SparkJobSettings, job_request, wait
from tests.fixtures.aws_in_process import aws_in_process
from tests.fixtures.iam.calls import BotocoreRecorder

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/credit-risk-batch-job"
CODE = "s3://credit-risk-batch-123456789012/code/"
LOGS = "s3://credit-risk-batch-123456789012/logs/"


@pytest.fixture
def application(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with aws_in_process(monkeypatch):
        emr = boto3.client("emr-serverless", region_name=REGION)
        app_id = emr.create_application(
            name="credit-risk-batch", releaseLabel="emr-7.5.0", type="SPARK"
        )["applicationId"]
        yield str(app_id)


def _env(app_id: str) -> dict[str, str]:
    return {
        "ML_SPARK_APPLICATION_ID": app_id,
        "ML_SPARK_JOB_ROLE_ARN": ROLE,
        "ML_SPARK_CODE_URI": CODE,
        "ML_SPARK_LOG_URI": LOGS,
        "ML_SPARK_REGISTRY_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:b",
        "MLFLOW_TRACKING_URI": "https://mlflow.ml.example.com",
        "AWS_REGION": REGION,
    }


def test_submit_starts_the_job_on_the_application_and_waits_for_success(
    application: str,
) -> None:
    # When a scoring job is submitted with the verb's own arguments after --
    args = ["spark", "submit", "--job", "score", "--json", "--"]
    verb = ["--input", "s3://b/input/book/", "--output", "s3://b/output/2026-12-06/"]
    with BotocoreRecorder() as recorder:
        result = CliRunner().invoke(app, [*args, *verb], env=_env(application))
    # Then it succeeded and printed the run it started
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["state"] == "SUCCESS"
    assert line["application_id"] == application
    assert line["logs"] == f"{LOGS}applications/{application}/jobs/{line['job_run_id']}/"
    # And EMR Serverless received the job as the role, with the verb and the packed environment
    (start,) = [c for c in recorder.calls if c.operation == "StartJobRun"]
    assert start.params["executionRoleArn"] == ROLE
    submit = start.params["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == f"{CODE}entry.py"
    assert submit["entryPointArguments"] == ["predict", "--engine", "spark", *verb]
    assert (
        f"spark.archives={CODE}venv.tar.gz#environment,{CODE}project.tar.gz#project"
        in (submit["sparkSubmitParameters"])
    )
    assert (
        "spark.emr-serverless.driverEnv.MLFLOW_TRACKING_URI=https://mlflow.ml.example.com"
        in (submit["sparkSubmitParameters"])
    )
    monitoring = start.params["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["s3MonitoringConfiguration"] == {"logUri": LOGS}
    polled = [c.operation for c in recorder.calls if c.operation == "GetJobRun"]
    assert polled
    run = boto3.client("emr-serverless", region_name=REGION).get_job_run(
        applicationId=application, jobRunId=line["job_run_id"]
    )["jobRun"]
    assert run["executionRole"] == ROLE


def test_missing_settings_are_named_and_nothing_starts(application: str) -> None:
    env = {**_env(application), "ML_SPARK_APPLICATION_ID": "", "ML_SPARK_JOB_ROLE_ARN": ""}
    with BotocoreRecorder() as recorder:
        result = CliRunner().invoke(app, ["spark", "submit", "--job", "train"], env=env)
    assert result.exit_code == 2, result.output
    assert "ML_SPARK_APPLICATION_ID, ML_SPARK_JOB_ROLE_ARN not set" in " ".join(
        result.output.split()
    )
    assert not [c for c in recorder.calls if c.operation == "StartJobRun"]


def test_a_training_job_runs_mlops_train_with_json() -> None:
    settings = SparkJobSettings(application_id="a", job_role_arn=ROLE, code_uri=CODE)
    request = job_request(settings, "train", ["--model", "xgboost"])
    assert request.arguments == ["train", "--json", "--model", "xgboost"]
    # XGBoost's barrier tasks need all workers at once: no dynamic allocation
    assert "spark.dynamicAllocation.enabled=false" in request.submit_parameters


class StandIn:
    """Plays a job run's states (moto's runs end SUCCESS at once); records cancels."""

    def __init__(self, states: list[str], details: str = "") -> None:
        self.states, self.details, self.cancelled = list(states), details, False

    def describe(self, run_id: str) -> JobRunState:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if self.cancelled:
            state = "CANCELLED"
        return JobRunState(run_id, state, self.details)

    def cancel(self, run_id: str) -> None:
        self.cancelled = True


def _wait(emr: StandIn, timeout_s: float = 600) -> JobRunState:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return wait(emr, "r1", timeout_s, 30, clock=lambda: now[0], sleep=sleep, logs="s3://l/")  # type: ignore[arg-type]


def test_a_failed_job_exits_21_with_its_details_and_logs() -> None:
    emr = StandIn(["PENDING", "RUNNING", "FAILED"], "Job failed, ExitCode: 1. Driver OOM")
    with pytest.raises(SparkJobError) as failed:
        _wait(emr)
    assert type(failed.value) is SparkJobError
    assert failed.value.exit_code == 21
    assert "Driver OOM" in str(failed.value)
    assert "s3://l/" in str(failed.value)


def test_a_job_cancelled_elsewhere_exits_22() -> None:
    with pytest.raises(SparkJobCancelledError) as cancelled:
        _wait(StandIn(["RUNNING", "CANCELLED"], "Job run cancelled by user"))
    assert cancelled.value.exit_code == 22


def test_a_job_past_the_deadline_is_cancelled_and_exits_23() -> None:
    emr = StandIn(["RUNNING"])
    with pytest.raises(SparkJobTimeoutError) as late:
        _wait(emr, timeout_s=120)
    assert late.value.exit_code == 23
    assert emr.cancelled
    assert "cancelled it" in str(late.value)


def test_success_returns_the_final_state() -> None:
    assert _wait(StandIn(["SUBMITTED", "SCHEDULED", "RUNNING", "SUCCESS"])).state == "SUCCESS"


@pytest.mark.parametrize(
    ("states", "code"), [(["FAILED"], 21), (["CANCELLED"], 22)], ids=["failed", "cancelled"]
)
def test_the_cli_exits_with_the_job_s_code(
    application: str, monkeypatch: pytest.MonkeyPatch, states: list[str], code: int
) -> None:
    from ml.spark import emr_serverless

    monkeypatch.setattr(
        emr_serverless.EmrServerless,
        "describe",
        lambda self, run_id: JobRunState(run_id, states[0], "stand-in"),
    )
    result = CliRunner().invoke(app, ["spark", "submit", "--job", "train"], env=_env(application))
    assert result.exit_code == code, result.output
