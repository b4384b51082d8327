"""The compose `features` profile and override: Redis for POST /predict/by-id, valid for Compose
v2 (the compose-spec schema) and docker-compose 1.29; the api waits for Redis only when by-id is
on (the override), and `docker compose up` alone still starts mlflow and api only.

Redis is the Dockerfile's `redis` target (Debian's redis-server on the digest-pinned base,
uid 10001), never a pulled image. The stack itself (Redis up, by-id through the api container)
runs in tests/integration/test_compose_stack.py."""

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
    assert redis["healthcheck"]["test"][:3] == ["CMD", "redis-cli", "-p"]
    assert redis["build"]["target"] == "redis"
    assert redis["image"] == "${IMAGE_PREFIX:-credit-risk}-redis:${IMAGE_TAG:-latest}"
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


def test_the_redis_image_is_debian_s_package_on_the_pinned_base_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    default_base = next(
        line.split("=", 1)[1]
        for line in dockerfile.splitlines()
        if line.startswith("ARG BASE_IMAGE=")
    )
    assert "@sha256:" in default_base  # the base every image builds on is pinned by digest
    stage = dockerfile.split("FROM base AS redis", 1)[1].split("\nFROM ", 1)[0]
    assert "FROM ${BASE_IMAGE} AS base" in dockerfile
    assert "apt-get install" in stage
    assert "redis-server" in stage
    assert "USER 10001:10001" in stage
    assert '"--maxmemory-policy", "noeviction"' in stage
