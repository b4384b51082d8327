"""The EMR Serverless adapter: the only module that talks to the `emr-serverless` API.

Three calls: start a job run, read its state, cancel it. Waiting, timeouts and what a state means
for the CLI belong to `ml.spark.submit`; this module only translates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.errors import UnreachableError

TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
"""Job run states after which nothing changes any more (EMR Serverless API reference)."""


@dataclass(frozen=True)
class JobRunState:
    """A job run as EMR Serverless describes it."""

    run_id: str
    state: str  # SUBMITTED, PENDING, SCHEDULED, RUNNING, SUCCESS, FAILED, CANCELLING, CANCELLED
    details: str = ""

    @property
    def finished(self) -> bool:
        """True once the state is terminal."""
        return self.state in TERMINAL


class EmrServerless:
    """Job runs of one EMR Serverless application."""

    def __init__(self, application_id: str, region: str | None = None, client: Any = None) -> None:
        self.application_id = application_id
        if client is None:
            from ml.adapters import aws

            client = aws.client("emr-serverless", region)
        self._client = client

    def _call(self, what: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(self._client, what)(**params))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise UnreachableError(
                f"EMR Serverless {what} on application {self.application_id}: "
                f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip()
            ) from None
        except BotoCoreError as exc:
            raise UnreachableError(f"EMR Serverless {what}: {exc}") from None

    def start(
        self,
        *,
        name: str,
        role_arn: str,
        entry_point: str,
        arguments: list[str],
        submit_parameters: str,
        log_uri: str | None,
        timeout_minutes: int,
        client_token: str,
    ) -> str:
        """Start a Spark job run; return its id. `client_token` makes a retried start one run."""
        monitoring: dict[str, Any] = {
            "cloudWatchLoggingConfiguration": {"enabled": True},
        }
        if log_uri:
            monitoring["s3MonitoringConfiguration"] = {"logUri": log_uri}
        answer = self._call(
            "start_job_run",
            applicationId=self.application_id,
            clientToken=client_token,
            executionRoleArn=role_arn,
            name=name,
            executionTimeoutMinutes=timeout_minutes,
            jobDriver={
                "sparkSubmit": {
                    "entryPoint": entry_point,
                    "entryPointArguments": arguments,
                    "sparkSubmitParameters": submit_parameters,
                }
            },
            configurationOverrides={"monitoringConfiguration": monitoring},
        )
        return str(answer["jobRunId"])

    def describe(self, run_id: str) -> JobRunState:
        """The run's state and EMR Serverless's explanation of it."""
        run = self._call("get_job_run", applicationId=self.application_id, jobRunId=run_id)[
            "jobRun"
        ]
        return JobRunState(run_id, str(run["state"]), str(run.get("stateDetails") or ""))

    def cancel(self, run_id: str) -> None:
        """Ask EMR Serverless to cancel the run (it moves through CANCELLING to CANCELLED)."""
        self._call("cancel_job_run", applicationId=self.application_id, jobRunId=run_id)
