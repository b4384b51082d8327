"""What the credit-risk DAGs share: one task = one `mlops` verb, its JSON result in XCom.

The DAGs orchestrate; the work stays in the repository's own entry point, so Airflow, GitHub
Actions and a laptop run the same commands. Each task runs `mlops ARGS --json` either as a
subprocess of the worker (runner `subprocess`, the default) or in the train image with the docker
provider's `DockerOperator` (runner `docker`). The verb prints one JSON object on its last stdout
line; the task returns it with `multiple_outputs`, so every key is its own XCom and the next task
names exactly what it takes (`xcom(train, "run_id")`), never "the latest version".

Configuration is read from the environment of the process that parses or runs the DAG (the
worker, the DAG processor), all optional (docs/airflow.md):

- `CREDIT_RISK_RUNNER`: `subprocess` (default) or `docker`; read when the DAG is parsed.
- `CREDIT_RISK_MLOPS`: the `mlops` executable (default: the project's `.venv/bin/mlops`).
- `CREDIT_RISK_PROJECT_DIR`: working directory of the verbs (default: this repository).
- `CREDIT_RISK_WORK_DIR`: per-run files, staged data and reports (default: .mlops/airflow).
- `CREDIT_RISK_IMAGE`, `CREDIT_RISK_DOCKER_URL`, `CREDIT_RISK_DOCKER_NETWORK`: docker runner.
- `CREDIT_RISK_DATA_REFERENCE`: the data gate's reference (default the production version's).
- `CREDIT_RISK_GIT_REMOTE`: where the promotion branch is pushed (default `origin`).
- `CREDIT_RISK_DRIFT_LOGS`: prediction logs the hourly drift job reads (unset: it is skipped).
- `CREDIT_RISK_BOOK_URI` / `CREDIT_RISK_SCORES_URI`: the book the nightly Spark scoring job reads
  (s3://<batch bucket>/input/...) and the prefix its dated outputs go under (unset: skipped).
- `CREDIT_RISK_DEADLINE_HOURS`: the retrain's deadline alert (default 3; 0: none); at parse time.

Standard library and Airflow only (the docker provider, and its docker SDK, for the docker
runner): the application's packages live in their own environment and are reached through the
`mlops` executable. This module holds no DAG; `.airflowignore` keeps the
DAG processor from parsing it, and the DAG files import it from the DAGs folder (on sys.path).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import BaseOperator, Context, XComArg
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from docker.types import Mount

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1]
RUNNERS = ("subprocess", "docker")


def _exit_codes(path: Path) -> dict[int, tuple[str, bool]]:
    """ml/errors.py's exit codes (label, final) as dags/exit_codes.json holds them: this
    environment cannot import the application (tests/unit/dags/test_exit_codes.py keeps the copy
    equal to ml/errors.py; `make dags-exit-codes` rewrites it)."""
    table = json.loads(path.read_text(encoding="utf-8"))
    return {int(code): (row["label"], bool(row["final"])) for code, row in table.items()}


# A final code is one a retry cannot change (bad input, a gate said no, a threshold was crossed):
# the task fails at once. Others (registry, git/GitHub, unexpected...) may be transient: retried.
EXIT_CODES = _exit_codes(Path(__file__).with_name("exit_codes.json"))
# Environment the docker runner forwards into the container (as private, unlogged variables).
FORWARDED_PREFIXES = ("ML_", "MLFLOW_", "NOTIFY_", "MLOPS_", "AWS_", "GH_", "GIT_", "GITHUB_")
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "credit-risk-airflow",
    "GIT_AUTHOR_EMAIL": "credit-risk-airflow@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "credit-risk-airflow",
    "GIT_COMMITTER_EMAIL": "credit-risk-airflow@users.noreply.github.com",
}


@dataclass(frozen=True)
class Settings:
    """The DAGs' configuration, from `CREDIT_RISK_*` environment variables (see the module)."""

    runner: str
    mlops: str
    project_dir: Path
    work_dir: Path
    image: str
    docker_url: str
    docker_network: str
    data_reference: str
    git_remote: str
    drift_logs: str
    model_name: str
    book_uri: str = ""
    scores_uri: str = ""


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration now (each task reads it when it runs, so a change needs no deploy).

    Raises:
        ValueError: `CREDIT_RISK_RUNNER` names no runner (the DAG then fails to import, naming it).
    """
    env = os.environ if env is None else env
    project = Path(env.get("CREDIT_RISK_PROJECT_DIR") or PROJECT_DIR)
    runner = env.get("CREDIT_RISK_RUNNER") or "subprocess"
    model = env.get("ML_MODEL_NAME") or "credit-risk"
    if runner not in RUNNERS:
        raise ValueError(f"CREDIT_RISK_RUNNER={runner!r}: use one of {', '.join(RUNNERS)}")
    return Settings(
        runner=runner,
        mlops=env.get("CREDIT_RISK_MLOPS") or str(project / ".venv" / "bin" / "mlops"),
        project_dir=project,
        work_dir=Path(env.get("CREDIT_RISK_WORK_DIR") or project / ".mlops" / "airflow"),
        image=env.get("CREDIT_RISK_IMAGE") or "credit-risk-train:latest",
        docker_url=env.get("CREDIT_RISK_DOCKER_URL") or "unix://var/run/docker.sock",
        docker_network=env.get("CREDIT_RISK_DOCKER_NETWORK") or "bridge",
        data_reference=env.get("CREDIT_RISK_DATA_REFERENCE") or f"models:/{model}@production",
        git_remote=env.get("CREDIT_RISK_GIT_REMOTE") or "origin",
        drift_logs=env.get("CREDIT_RISK_DRIFT_LOGS") or "",
        model_name=model,
        book_uri=env.get("CREDIT_RISK_BOOK_URI") or "",
        scores_uri=env.get("CREDIT_RISK_SCORES_URI") or "",
    )


def deadline_hours(env: Mapping[str, str] | None = None) -> timedelta | None:
    """The training run's deadline alert interval, or None for no deadline alert.

    Switchable because `airflow dags test` 3.3.2 exits 1 after a successful run of a DAG with a
    deadline (apache/airflow#73428, open): the end-to-end test runs without one.

    Raises:
        ValueError: not a number of hours.
    """
    raw = (os.environ if env is None else env).get("CREDIT_RISK_DEADLINE_HOURS") or "3"
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(
            f"CREDIT_RISK_DEADLINE_HOURS={raw!r}: a number of hours, 0 for none"
        ) from None
    return timedelta(hours=hours) if hours > 0 else None


def setting(name: str) -> str:
    """One setting as text, for templates: `{{ setting('git_remote') }}` (read at render time)."""
    return str(getattr(settings(), name))


def run_dir(dag_id: str, run_id: str) -> str:
    """This run's folder under the work dir (`{{ run_dir(dag.dag_id, run_id) }}`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    return str(settings().work_dir / dag_id / safe)


MACROS: dict[str, Callable[..., str]] = {"setting": setting, "run_dir": run_dir}


def xcom(task: BaseOperator, key: str) -> XComArg:
    """One key of an upstream task's JSON result (its own XCom, `multiple_outputs`), e.g.
    `xcom(train, "run_id")`: passing it to a task makes that task downstream of `task`."""
    return XComArg(task, key=key)


"""`user_defined_macros` of both DAGs."""


def task_env() -> dict[str, str]:
    """The verbs' environment: the worker's, a git identity for the promotion commit when none is
    configured, wide tables for the logs, and no progress bars (they are noise in a task log)."""
    env = {**_GIT_IDENTITY, **os.environ}
    env.setdefault("COLUMNS", "160")
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return env


# --- results and failures ------------------------------------------------------------------


class MlopsStepError(AirflowException):
    """A verb exited non-zero (retried: the cause may be transient); `exit_code` says which."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MlopsStepRejected(AirflowFailException):
    """A verb exited with a final code (bad input, gate, threshold): failed without retry."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def step_failure(verb: str, exit_code: int, output: Sequence[str]) -> AirflowException:
    """The exception for a failed verb: its one-line error, and whether a retry may help."""
    lines = [line.strip() for line in output if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    reason = (errors or lines or ["(no output)"])[-1][:500]
    kind, final = EXIT_CODES.get(exit_code, ("failed", False))
    message = f"mlops {verb} exited {exit_code} ({kind}): {reason}"
    if final:
        return MlopsStepRejected(message, exit_code)
    return MlopsStepError(message, exit_code)


def parse_result(verb: str, stdout: Sequence[str], json_result: bool) -> dict[str, Any]:
    """The JSON object a verb printed on its last stdout line (`{}` for verbs without one)."""
    lines = [line for line in stdout if line.strip()]
    if not json_result:
        return {}
    if not lines:
        raise AirflowException(f"mlops {verb} printed nothing; expected one JSON line (--json)")
    try:
        value = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise AirflowException(
            f"mlops {verb}: the last output line is not JSON: {lines[-1][:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise AirflowException(f"mlops {verb}: expected a JSON object, got {type(value).__name__}")
    return value


# --- operators ---------------------------------------------------------------------------------


def configured(requires: Sequence[str]) -> Settings:
    """The settings, when every one a task `requires` is set; else the task is skipped, naming
    the variables (the drift job has nothing to read until its logs are configured)."""
    cfg = settings()
    missing = [name for name in requires if not getattr(cfg, name)]
    if missing:
        names = ", ".join(f"CREDIT_RISK_{n.upper()}" for n in missing)
        raise AirflowSkipException(f"{names} not set: nothing to check (docs/airflow.md)")
    return cfg


def _verb(arguments: Sequence[object]) -> str:
    words = [str(a) for a in arguments if not str(a).startswith("-")]
    return " ".join(words[:2]) if words[:1] in (["data"], ["monitor"], ["pr"]) else words[0]


class MlopsOperator(BaseOperator):
    """Run `mlops ARGUMENTS` as a subprocess of the worker; its JSON result is the XCom.

    `arguments` is templated (Jinja, and XComArgs of upstream tasks resolve to their values).
    stderr streams into the task log as it comes; stdout is logged and its last line parsed.
    `requires` names settings that must be set, or the task is skipped saying which.
    """

    template_fields = ("arguments",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        arguments: Sequence[object],
        json_result: bool = True,
        requires: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", json_result)
        super().__init__(**kwargs)
        self.arguments = list(arguments)
        self.json_result = json_result
        self.requires = tuple(requires)
        self._proc: subprocess.Popen[str] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the verb; its JSON object, or an exception that says whether to retry."""
        cfg = configured(self.requires)
        command = [cfg.mlops, *(str(a) for a in self.arguments)]
        self.log.info("running in %s: %s", cfg.project_dir, shlex.join(command))
        try:
            self._proc = subprocess.Popen(
                command,
                cwd=cfg.project_dir,
                env=task_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # on_kill ends the verb and its children
            )
        except OSError as exc:
            raise MlopsStepRejected(
                f"cannot run {cfg.mlops}: {exc} (set CREDIT_RISK_MLOPS, or `make install`)", 2
            ) from None
        proc = self._proc
        errors: list[str] = []

        def pump_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                errors.append(line.rstrip("\n"))
                self.log.info("%s", line.rstrip("\n"))

        reader = threading.Thread(target=pump_stderr, daemon=True)
        reader.start()
        assert proc.stdout is not None
        out = [line.rstrip("\n") for line in proc.stdout]
        code = proc.wait()
        reader.join(timeout=10)
        for line in out:
            self.log.info("%s", line)
        verb = _verb(self.arguments)
        if code != 0:
            raise step_failure(verb, code, errors + out)
        return parse_result(verb, out, self.json_result)

    def on_kill(self) -> None:
        """Timeout or a user's kill: stop the verb's whole process group."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)


class MlopsDockerOperator(DockerOperator):
    """`mlops ARGUMENTS` in the train image (whose entrypoint is `mlops`); its JSON result.

    The docker provider runs the container and returns its last log line; a non-zero exit is
    mapped to the same retry-or-not failure as the subprocess runner.
    """

    def __init__(
        self,
        *,
        arguments: Sequence[object],
        json_result: bool = True,
        requires: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        cfg = settings()
        forwarded = {k: v for k, v in task_env().items() if k.startswith(FORWARDED_PREFIXES)}
        super().__init__(
            image=cfg.image,
            command=list(arguments),  # type: ignore[arg-type]  # XComArgs resolve to str
            docker_url=cfg.docker_url,
            network_mode=cfg.docker_network,
            # Per-run files (staged data, reports) at the same path inside as outside.
            mounts=[Mount(target=str(cfg.work_dir), source=str(cfg.work_dir), type="bind")],
            mount_tmp_dir=False,
            # The worker's uid: the run's files in the mounted work dir stay the worker's.
            user=f"{os.getuid()}:{os.getgid()}",
            private_environment=forwarded,
            environment={"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "COLUMNS": "160"},
            auto_remove="success",
            multiple_outputs=json_result,
            **kwargs,
        )
        self.json_result = json_result
        self.requires = tuple(requires)

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        """Run the container; its JSON object, or an exception that says whether to retry."""
        cfg = configured(self.requires)
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
        verb = _verb(self.command if isinstance(self.command, list) else [])
        try:
            last = super().execute(context)
        except DockerContainerFailedException as exc:
            found = re.search(r"'StatusCode': (\d+)", str(exc))
            logs = [str(line) for line in (exc.logs or [])]
            raise step_failure(verb, int(found.group(1)) if found else 1, logs) from None
        return parse_result(verb, [str(last or "")], self.json_result)


def mlops_task(
    task_id: str, arguments: Sequence[object], *, needs_git: bool = False, **kwargs: Any
) -> BaseOperator:
    """One DAG task running one `mlops` verb with the configured runner.

    Args:
        task_id: the task's id.
        arguments: the verb and its options; Jinja strings and upstream XComArgs allowed.
        needs_git: the verb runs git and gh (the promotion PR), which the train image does not
            carry: it always runs as a subprocess, where the Airflow image has both.
        **kwargs: BaseOperator arguments (retries, execution_timeout, callbacks, ...) and
            `json_result` / `requires` of `MlopsOperator`.
    """
    if settings().runner == "docker" and not needs_git:
        return MlopsDockerOperator(task_id=task_id, arguments=arguments, **kwargs)
    return MlopsOperator(task_id=task_id, arguments=arguments, **kwargs)


# --- notifications -------------------------------------------------------------------------


def notify(event: str, fields: Mapping[str, object]) -> None:
    """Send one notification through `mlops notify` (NOTIFY_WEBHOOK_URL); never raises.

    Callbacks report on a run and must not fail it: the verb itself never exits non-zero for
    an undelivered message, and a missing executable is only logged here.
    """
    cfg = settings()
    command = [cfg.mlops, "notify", "--event", event]
    for key, value in fields.items():
        if value not in (None, ""):
            command += ["--field", f"{key}={value}"]
    try:
        done = subprocess.run(
            command,
            cwd=cfg.project_dir,
            env=task_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log.info("mlops notify %s: %s", event, (done.stdout + done.stderr).strip()[-300:])
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("notification %s not sent: %s", event, exc)


def failure_notifier(event: str, skip_exit_codes: Sequence[int] = ()) -> Callable[[Context], None]:
    """An `on_failure_callback` that notifies `event` with the failed task and its reason.

    It fires once per failed task, after its retries; downstream tasks end `upstream_failed`
    and send nothing. `skip_exit_codes`: failures the verb has already reported itself (the
    drift job notifies its own breach, exit 15, with the figures).
    """

    def on_failure(context: Context) -> None:
        ti = context["ti"]
        exc = context.get("exception")
        code = getattr(exc, "exit_code", None)
        if code in skip_exit_codes:
            return
        notify(
            event,
            {
                "model": settings().model_name,
                "task": ti.task_id,
                "reason": " ".join(str(exc).split())[:300] if exc else "failed",
                "exit_code": code,
                "dag_run": context["run_id"],
                "run": getattr(ti, "log_url", None),
            },
        )

    return on_failure


def notify_registered(context: Context) -> None:
    """`on_success_callback` of the promotion PR task: the new version and its pull request."""
    ti = context["ti"]
    notify(
        "retrain.registered",
        {
            "model": ti.xcom_pull(task_ids="register", key="model") or settings().model_name,
            "version": ti.xcom_pull(task_ids="register", key="version"),
            "pr": ti.xcom_pull(task_ids=ti.task_id, key="url"),
            "dag_run": context["run_id"],
            "run": getattr(ti, "log_url", None),
        },
    )


def notify_deadline_missed(
    *, event: str, dag_id: str, context: Mapping[str, Any] | None = None
) -> None:
    """Deadline alert callback (SyncCallback, imported by path on the executor): the run is late."""
    run = (context or {}).get("dag_run")
    notify(
        event,
        {"model": settings().model_name, "dag": dag_id, "dag_run": getattr(run, "run_id", run)},
    )
