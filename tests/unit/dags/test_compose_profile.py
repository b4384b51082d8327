"""The compose `airflow` profile and the Dockerfile stage it builds: standalone Airflow on the
train image, valid for Compose v2 (the compose-spec schema) and docker-compose 1.29."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_profile_runs_the_airflow_stage_of_the_train_image(compose: dict) -> None:
    services = compose["services"]
    airflow = {n for n, s in services.items() if "airflow" in s.get("profiles", [])}
    assert airflow == {"airflow"}
    service = services["airflow"]
    assert service["build"]["target"] == "airflow"
    assert service["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert service["environment"]["CREDIT_RISK_RUNNER"] == "subprocess"
    assert "airflow-data" in compose["volumes"]
    # `docker compose up` alone still starts mlflow and api only
    assert {n for n, s in services.items() if not s.get("profiles")} == {"mlflow", "api"}


def test_the_stage_builds_on_train_and_train_stays_the_default() -> None:
    stages = re.findall(r"^FROM (\S+) AS (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    order = [name for _, name in stages]
    parents = dict((name, parent) for parent, name in stages)
    assert parents["airflow"] == "train"
    assert order.index("airflow") > order.index("train")  # building train never builds it
    assert parents[order[-1]] == "train"  # a plain `docker build .` is still the batch job


def test_compose_v2_schema_accepts_the_files() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec",
         "docker-compose.yml", "docker-compose.hostnet.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose 1.29 absent")
def test_docker_compose_1_29_accepts_the_profile() -> None:
    for files in (["-f", "docker-compose.yml"],
                  ["-f", "docker-compose.yml", "-f", "docker-compose.hostnet.yml"]):  # fmt: skip
        result = subprocess.run(
            ["docker-compose", *files, "--profile", "airflow", "config", "-q"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
