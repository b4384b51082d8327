"""scripts/deploy.py against moto in server mode (a real process on 127.0.0.1).

moto's ECS never finishes a rollout when desiredCount > 0 and cannot run tasks, which is exactly
what the stuck-rollout case needs; a desiredCount of 0 is stable at once, and a local HTTP server
stands in for the task in the smoke test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.services import start_moto_server, stop_moto_server

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
CLUSTER = "credit-risk-staging"
SERVICE = "credit-risk-serve"
REPO = "credit-risk-serve"


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server process; the module fails loudly if it cannot start."""
    server = start_moto_server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server.url
    stop_moto_server(server)


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points boto3 (here and in the subprocess) at moto, with a fresh state."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5
    ).close()
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _client(name: str) -> Any:
    return boto3.client(name, region_name=REGION)


def _setup(desired_count: int, push_tag: str | None) -> str:
    """Repository (+ an image tag), cluster, task definition v1 and a service on it."""
    ecr = _client("ecr")
    repo_url = ecr.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE")[
        "repository"
    ]["repositoryUri"]
    if push_tag:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        }
        ecr.put_image(repositoryName=REPO, imageManifest=json.dumps(manifest), imageTag=push_tag)
    ecs = _client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    first = ecs.register_task_definition(
        family="credit-risk-serve",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=[
            {
                "name": "serve",
                "image": f"{repo_url}:old",
                "essential": True,
                "portMappings": [{"containerPort": 8000}],
                "environment": [{"name": "SERVE_MODEL_ALIAS", "value": "staging"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=CLUSTER, serviceName=SERVICE, taskDefinition=first, desiredCount=desired_count
    )
    return str(repo_url)


def _service_task_definition() -> str:
    found = _client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])
    return str(found["services"][0]["taskDefinition"])


def _revisions() -> list[str]:
    return list(
        _client("ecs").list_task_definitions(familyPrefix="credit-risk-serve")["taskDefinitionArns"]
    )


class _FakeTask(BaseHTTPRequestHandler):
    version = "7"

    def do_GET(self) -> None:
        body: dict[str, Any]
        if self.path == "/health":
            body = {"status": "ok"}
        elif self.path == "/metadata":
            body = {"model": {"name": "credit-risk", "version": self.version}}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def task_url() -> Iterator[str]:
    """A local HTTP server answering /health and /metadata (model version 7) like the task."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeTask)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy.py"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_clean_rollout_is_stable_and_passes_the_smoke_test(
    aws_env: dict[str, str], task_url: str
) -> None:
    # Given a service with desiredCount 0 (moto reports it stable) and the image in ECR
    repo_url = _setup(desired_count=0, push_tag="abc123")
    before = _service_task_definition()
    # When deploying that tag with a smoke test against the stand-in task
    proc = _deploy(
        aws_env,
        "deploy",
        "--cluster", CLUSTER, "--service", SERVICE, "--image", f"{repo_url}:abc123",
        "--base-url", task_url, "--expected-model-version", "7",
        "--timeout", "20", "--poll", "0.2", "--smoke-timeout", "5",
    )  # fmt: skip
    # Then it succeeds and the service runs a new revision with the new image
    assert proc.returncode == 0, proc.stderr
    after = _service_task_definition()
    assert after != before
    assert after.endswith(":2")
    described = _client("ecs").describe_task_definition(taskDefinition=after)["taskDefinition"]
    assert described["containerDefinitions"][0]["image"] == f"{repo_url}:abc123"
    assert described["cpu"] == "512"
    assert described["containerDefinitions"][0]["environment"] == [
        {"name": "SERVE_MODEL_ALIAS", "value": "staging"}
    ]


def test_wrong_model_version_fails_the_smoke_test_and_rolls_back(
    aws_env: dict[str, str], task_url: str
) -> None:
    # Given a stable service, but the task serves model version 7
    repo_url = _setup(desired_count=0, push_tag="abc123")
    before = _service_task_definition()
    # When the deployment expects version 8
    proc = _deploy(
        aws_env,
        "deploy",
        "--cluster", CLUSTER, "--service", SERVICE, "--image", f"{repo_url}:abc123",
        "--base-url", task_url, "--expected-model-version", "8",
        "--timeout", "20", "--poll", "0.2", "--smoke-timeout", "1",
    )  # fmt: skip
    # Then it fails loudly and the service is back on the previous task definition
    assert proc.returncode != 0
    assert "ROLLED BACK" in proc.stderr
    assert "expected 8" in proc.stderr
    assert _service_task_definition() == before


def test_stuck_rollout_times_out_and_rolls_back(aws_env: dict[str, str]) -> None:
    # Given a service with desiredCount 1: moto never completes its rollout
    repo_url = _setup(desired_count=1, push_tag="abc123")
    before = _service_task_definition()
    # When deploying with a short rollout timeout
    started = time.monotonic()
    proc = _deploy(
        aws_env,
        "deploy",
        "--cluster", CLUSTER, "--service", SERVICE, "--image", f"{repo_url}:abc123",
        "--timeout", "2", "--poll", "0.2",
    )  # fmt: skip
    # Then it times out within its bound, exits non-zero and the service is on the previous ARN
    assert time.monotonic() - started < 60
    assert proc.returncode != 0
    assert "not stable after 2 s" in proc.stderr
    assert "ROLLED BACK" in proc.stderr
    assert _service_task_definition() == before
    assert len(_revisions()) == 2  # the failed revision exists, but nothing runs it


def test_missing_image_is_refused_before_ecs_is_touched(aws_env: dict[str, str]) -> None:
    # Given an ECR repository without the tag
    repo_url = _setup(desired_count=0, push_tag=None)
    before = _service_task_definition()
    revisions = _revisions()
    # When deploying that tag
    proc = _deploy(
        aws_env,
        "deploy",
        "--cluster", CLUSTER, "--service", SERVICE, "--image", f"{repo_url}:nope",
        "--timeout", "5", "--poll", "0.2",
    )  # fmt: skip
    # Then it is refused and no task definition revision was registered
    assert proc.returncode != 0
    assert "not in ECR" in proc.stderr
    assert _revisions() == revisions
    assert _service_task_definition() == before


def _script(env: dict[str, str], name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_push_images_keeps_an_existing_immutable_tag(aws_env: dict[str, str]) -> None:
    # Given the tag is already in ECR (a re-run of CD)
    repo_url = _setup(desired_count=0, push_tag="abc123")
    # When push_images runs for that tag
    proc = _script({**aws_env, "ECR_REPOSITORY_URL": repo_url, "IMAGE_TAG": "abc123"},
                   "push_images.py")  # fmt: skip
    # Then it neither rebuilds nor needs a docker engine
    assert proc.returncode == 0, proc.stderr
    assert "already in ECR (immutable tag): not rebuilt" in proc.stdout


def test_push_images_needs_a_repository(aws_env: dict[str, str]) -> None:
    env = {**aws_env, "ECR_REPOSITORY_URL": "", "IMAGE_TAG": "abc123"}
    proc = _script(env, "push_images.py")
    assert proc.returncode == 1
    assert "ECR_REPOSITORY_URL is not set" in proc.stderr


def test_registry_auth_decodes_ecr_token(aws_env: dict[str, str]) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import push_images

    auth = push_images.registry_auth(_client("ecr"))
    assert auth["username"] == "AWS"
    assert auth["password"]


def test_desired_version_reads_promotions_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "promotions.yaml"
    spec.write_text("models:\n  credit-risk:\n    version: 9\n")
    out = tmp_path / "out"
    proc = _script({"GITHUB_OUTPUT": str(out)}, "deploy.py", "desired-version",
                   "--promotions", str(spec))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "9"
    assert out.read_text() == "version=9\n"
    missing = _script({}, "deploy.py", "desired-version", "--model", "nope",
                      "--promotions", str(spec))  # fmt: skip
    assert missing.returncode != 0
    assert "not listed" in missing.stderr


def test_bad_image_uri_is_refused() -> None:
    from ml.deploy.ecs import DeployError, ImageRef

    with pytest.raises(DeployError, match="bad image URI"):
        ImageRef.parse("credit-risk-serve")
    assert ImageRef.parse("1.dkr.ecr.x.amazonaws.com/a/b:t").repository == "a/b"
