"""The compose `monitoring` profile: official images pinned by digest, the repository's config
files mounted where each tool reads them, and a file valid for docker-compose 1.29."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {"prometheus", "alertmanager", "pushgateway", "grafana"}
DIGEST = re.compile(r"^[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_profile_has_the_four_services_pinned_by_digest(compose: dict) -> None:
    services = compose["services"]
    monitoring = {n for n, s in services.items() if "monitoring" in s.get("profiles", [])}
    assert monitoring == SERVICES
    for name in SERVICES:
        assert DIGEST.match(services[name]["image"]), services[name]["image"]
    # The default `docker compose up` still starts only mlflow and api
    assert {n for n, s in services.items() if not s.get("profiles")} == {"mlflow", "api"}


def test_mounted_files_exist(compose: dict) -> None:
    for name in SERVICES:
        for volume in compose["services"][name].get("volumes", []):
            if volume.startswith("${"):  # ${VAR:-default}:/target
                source = volume[: volume.index("}")].split(":-", 1)[1]
            else:
                source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_prometheus_scrapes_the_api_and_the_pushgateway() -> None:
    config = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["credit-risk-api"] == ["api:8000"]
    assert targets["pushgateway"] == ["pushgateway:9091"]
    pushgateway = next(j for j in config["scrape_configs"] if j["job_name"] == "pushgateway")
    assert pushgateway["honor_labels"] is True


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose 1.29 absent")
def test_docker_compose_1_29_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "--profile", "monitoring", "config", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
