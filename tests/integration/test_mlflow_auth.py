"""MLflow's basic-auth app with the users `mlops bootstrap` creates: the reader validates and
plans but cannot apply (one-line permission error, exit 4, nothing moves); the deployer applies.

A real `mlflow server --app-name basic-auth` process on SQLite; the users and grants are made by
ml.platform.bootstrap.mlflow_users through MLflow's auth REST API; the CLI runs as a subprocess
with each user's credentials in MLFLOW_TRACKING_USERNAME/PASSWORD, as the workflows pass them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import services as devservices
from ml.platform.bootstrap import mlflow_users
from ml.platform.bootstrap import run as bootstrap_run
from ml.platform.bootstrap.recorder import Recorder
from ml.platform.bootstrap.values import Values, secrets_manager_reader
from ml.platform.config import load_platform
from tests.fixtures.models import GATES, register_tiny, snapshot, write_spec
from tests.fixtures.services import (
    MlflowServer,
    start_mlflow_server,
    start_moto_server,
    stop_mlflow_server,
    stop_moto_server,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_platform(ROOT / "config" / "platform.yaml")
ADMIN = ("admin", "admin-" + uuid.uuid4().hex)
MLOPS = Path(sys.executable).parent / "mlops"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server --app-name basic-auth`: admin from the environment, users in SQLite."""
    base = tmp_path_factory.mktemp("mlflow-auth")
    shim = base / "mlflow"
    mlflow = devservices.MLFLOW
    shim.write_text(f'#!/bin/sh\nshift\nexec {mlflow} server --app-name basic-auth "$@"\n')
    shim.chmod(0o755)
    ini = base / "basic_auth.ini"
    ini.write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{base}/auth.db\n"
        # As the image does: a verified password is cached for 60 s instead of re-hashed
        # (PBKDF2) on every request.
        "admin_username = admin\nauth_cache_ttl_seconds = 60\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setattr(devservices, "MLFLOW", shim)
        server = start_mlflow_server(f"sqlite:///{base / 'mlflow.db'}", base)
    yield server
    stop_mlflow_server(server)


@pytest.fixture(scope="module")
def model(auth_server: MlflowServer) -> str:
    """One registered version, registered by the admin."""
    name = f"auth-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        register_tiny(auth_server.uri, name)
    return name


@pytest.fixture(scope="module")
def users(auth_server: MlflowServer, model: str) -> dict[str, tuple[str, str | None]]:
    """The users of config/platform.yaml, made through MLflow's auth API (no GitHub here)."""
    recorder = Recorder(lambda _: None, dry_run=False)
    admin = mlflow_users.MlflowAdmin(auth_server.uri, *ADMIN, recorder)
    passwords = {key: f"{key}-{uuid.uuid4().hex}" for key in CONFIG.mlflow_users}
    return mlflow_users.mlflow_users(CONFIG, admin, None, [model], "promotions-tests", passwords)


def mlops(
    server: MlflowServer, user: tuple[str, str | None], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {
        "MLFLOW_TRACKING_URI": server.uri,
        "MLFLOW_TRACKING_USERNAME": user[0],
        "MLFLOW_TRACKING_PASSWORD": user[1] or "",
    }
    return subprocess.run(
        [str(MLOPS), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def registry_state(server: MlflowServer, name: str) -> object:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        return snapshot(server.uri, [name])


def test_the_reader_validates_and_plans_but_cannot_apply(
    auth_server: MlflowServer, model: str, users: dict, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "promotions.yaml", {model: 1})
    gates = ["--file", str(spec), "--gates", str(GATES)]
    reader = users["reader"]

    validate = mlops(auth_server, reader, "promote", "validate", *gates)
    plan = mlops(auth_server, reader, "promote", "plan", *gates)  # the plan evaluates gates too
    assert validate.returncode == 0, validate.stderr
    assert "gates passed" in validate.stdout
    assert plan.returncode == 0, plan.stderr
    assert "staging none → 1" in plan.stdout

    before = registry_state(auth_server, model)
    apply = mlops(auth_server, reader, "promote", "apply", "--env", "staging", *gates)

    # One clear line, the registry exit code, no traceback, and nothing moved
    lines = [ln for ln in apply.stderr.splitlines() if ln.strip()]
    assert apply.returncode == 4, apply.stdout + apply.stderr
    assert len(lines) == 1, apply.stderr
    assert "403" in lines[0] or "permission" in lines[0].lower()
    assert "Traceback" not in apply.stdout + apply.stderr
    assert registry_state(auth_server, model) == before


def test_the_deployer_applies(
    auth_server: MlflowServer, model: str, users: dict, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "promotions.yaml", {model: 1})
    gates = ["--file", str(spec), "--gates", str(GATES)]

    apply = mlops(auth_server, users["deployer"], "promote", "apply", "--env", "staging", *gates)

    assert apply.returncode == 0, apply.stdout + apply.stderr
    assert "alias staging: none → 1" in apply.stdout
    status = mlops(
        auth_server, users["reader"], "promote", "status", "--env", "staging", *gates[:2]
    )
    assert status.returncode == 0, status.stdout + status.stderr


def _whoami(server: MlflowServer, user: str, password: str) -> int:
    token = b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1",
        headers={"Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_second_run_rotates_passwords_and_keeps_grants(
    auth_server: MlflowServer, model: str, users: dict
) -> None:
    lines: list[str] = []
    admin = mlflow_users.MlflowAdmin(auth_server.uri, *ADMIN, Recorder(lines.append, dry_run=False))
    rotated = mlflow_users.mlflow_users(CONFIG, admin, None, [model], "promotions-tests")

    username, old = users["deployer"]
    new = rotated["deployer"][1]
    assert new
    assert new != old
    assert _whoami(auth_server, username, old or "") == 401
    assert _whoami(auth_server, username, new) == 200
    assert any("update-password" in ln for ln in lines)
    assert not any("permissions/grant" in ln for ln in lines)  # EDIT already held
    assert all(new not in ln for ln in lines)  # generated passwords are never logged


def test_terraform_made_credentials_come_from_secrets_manager(
    auth_server: MlflowServer, model: str, tmp_path: Path
) -> None:
    """The admin and each environment's API reader come from the secrets terraform names."""
    import boto3

    moto = start_moto_server(tmp_path / "moto.log")
    try:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
        )
        sm = session.client("secretsmanager", endpoint_url=moto.url)

        def secret(name: str, value: dict[str, str]) -> str:
            return str(sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

        reader = {"username": "serve-staging", "password": uuid.uuid4().hex}
        outputs = {
            "platform": {
                "mlflow_tracking_uri": {"value": auth_server.uri},
                "mlflow_admin_secret_arn": {
                    "value": secret("admin", {"username": ADMIN[0], "password": ADMIN[1]})
                },
            },
            "staging": {"mlflow_reader_secret_arn": {"value": secret("reader", reader)}},
            "production": {},  # not applied yet: its reader is skipped, said in the log
        }
        lines: list[str] = []
        recorder = Recorder(lines.append, dry_run=False)

        class _Session:  # boto3 session bound to moto
            def client(self, name: str, **kw: object) -> object:
                return session.client(name, endpoint_url=moto.url, **kw)  # type: ignore[call-overload]

        values = Values(
            outputs,
            {},
            "",
            False,
            secrets_manager_reader(_Session(), "eu-west-1", recorder),
        )
        admin = bootstrap_run._mlflow_admin({}, values, recorder)
        made = mlflow_users.mlflow_users(
            CONFIG, admin, None, [model], "promotions-tests", None, values
        )
    finally:
        stop_moto_server(moto)

    assert made["serve/staging"] == ("serve-staging", reader["password"])
    assert "serve/production" not in made
    assert any("skipped MLflow user" in ln and "production" in ln for ln in lines)
    assert _whoami(auth_server, "serve-staging", reader["password"]) == 200
    assert all(reader["password"] not in ln and ADMIN[1] not in ln for ln in lines)
