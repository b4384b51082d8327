"""The compose `features` profile and override: Redis for POST /predict/by-id, valid for Compose
v2 (the compose-spec schema) and docker-compose 1.29; the api waits for Redis only when by-id is
on (the override), and `docker compose up` alone still starts mlflow and api only.

The stack itself (Redis up, by-id through the api container) is not run here: see
docs/serving.md, "Scoring by applicant id"."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_redis_is_opt_in_and_evicts_nothing() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    redis = services["redis"]
    assert redis["profiles"] == ["features"]
    assert "noeviction" in redis["command"]
    assert redis["healthcheck"]["test"][0] == "CMD-SHELL"
    assert all(p.startswith("127.0.0.1:") for p in redis["ports"])  # never on every interface
    assert "redis" not in services["api"].get("depends_on", {})
    assert {n for n, s in services.items() if not s.get("profiles")} == {"mlflow", "api"}


def test_the_override_points_the_api_at_redis_and_waits_for_it() -> None:
    override = yaml.safe_load((ROOT / "docker-compose.features.yml").read_text())
    api = override["services"]["api"]
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert api["environment"]["SERVE_FEATURES_REDIS_URL"].startswith("${SERVE_FEATURES_REDIS_URL:-")


def test_compose_v2_schema_accepts_the_override() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec",
         "docker-compose.yml", "docker-compose.features.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose 1.29 absent")
def test_docker_compose_1_29_merges_the_override() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.features.yml",
         "--profile", "features", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)["services"]["api"]
    assert merged["depends_on"]["redis"]["condition"] == "service_healthy"
    assert merged["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert merged["environment"]["SERVE_FEATURES_REDIS_URL"] == "redis://redis:6379/0"
