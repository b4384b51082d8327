"""The compose stack on a real docker engine: train, promote, serve, roll back, all in containers.

Given the images (built or reused) and the stack up (mlflow + api, host networking, free ports),
the train container registers versions in the mlflow container, `mlops promote apply` run in the
train image moves the `production` alias, and the api container follows it without a restart.
With the `features` profile (docker-compose.features.yml) the api starts only once the Redis
container is healthy, `mlops features materialize` in the train image writes a snapshot into it,
and `/predict/by-id` through the api answers the scores `/predict` gives for the same rows.
A separate test checks the serve image's contract: non-root, no training or server packages.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.feature_store.layout import Keys, SnapshotInfo
from ml.feature_store.redis_adapter import SyncRedis
from ml.features import FEATURE_COLUMNS, FEATURES
from tests.fixtures import docker_stack
from tests.fixtures.docker_stack import Stack, http_json

# The docker fixtures live with the stack helpers (tests/fixtures/docker_stack.py).
docker_client = docker_stack.docker_client
stack_images = docker_stack.stack_images
compose_stack = docker_stack.compose_stack
redis_image = docker_stack.redis_image
features_stack = docker_stack.features_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
KEYS = Keys("credit-risk")

MODEL = "credit-risk"
# Distributions that must stay out of the serve image (training stack, MLflow server).
FORBIDDEN_IN_SERVE = {
    "pandas",
    "scikit-learn",  # the image serves the native booster only (servable_flavors)
    "matplotlib",
    "mlflow",  # the full distribution; mlflow-skinny (client) is expected
    "flask",
    "gunicorn",
    "alembic",
    "sqlalchemy",
    "pyarrow",
    "boto3",
}


@pytest.fixture(scope="module")
def promotions_dir() -> Iterator[Path]:
    """A directory the container user (uid 10001) can read, for promotions files to mount."""
    with tempfile.TemporaryDirectory(prefix="promotions-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def promote(stack: Stack, folder: Path, version: int, *, rollback: bool = False) -> str:
    """Write promotions.yaml for `version` and apply it to staging, then production."""
    spec = folder / f"promotions-v{version}-{int(time.time() * 1000)}.yaml"
    lines = ["models:", f"  {MODEL}:", f"    version: {version}"]
    if rollback:
        lines.append("    rollback: true")
    spec.write_text("\n".join(lines) + "\n")
    spec.chmod(0o644)
    mount = f"{spec}:/tmp/promotions.yaml:ro"
    out = ""
    for env in ("staging", "production"):
        out += stack.run_train(
            "promote", "apply", "--env", env, "--file", "/tmp/promotions.yaml", volumes=[mount]
        )
    return out


def served_version(stack: Stack, expected: str, timeout: float = 90) -> str:
    """Poll /metadata until the api serves `expected`; return the last version seen."""
    deadline = time.monotonic() + timeout
    seen = "none"
    while time.monotonic() < deadline:
        try:
            seen = str(http_json(f"{stack.api_url}/metadata")["model"]["version"])
        except (OSError, KeyError, ValueError):
            seen = "unavailable"
        if seen == expected:
            return seen
        time.sleep(1)
    return seen


def test_train_promote_serve_and_roll_back_in_containers(
    compose_stack: Stack, promotions_dir: Path
) -> None:
    # Given the stack is up and the registry is empty
    client = MlflowClient(
        tracking_uri=compose_stack.tracking_uri, registry_uri=compose_stack.tracking_uri
    )

    # When the train container runs twice
    for _ in range(2):
        compose_stack.run_train()
    # Then two versions of the model are registered in the mlflow container
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    assert versions == [1, 2], compose_stack.logs()

    # When promotions.yaml moves production to v1, then to v2 (applied from the train image)
    promote(compose_stack, promotions_dir, 1)
    out = promote(compose_stack, promotions_dir, 2)
    # Then the alias points at v2 and the api follows it without a restart
    assert client.get_model_version_by_alias(MODEL, "production").version == "2", out
    seen = served_version(compose_stack, "2")
    assert seen == "2", f"api serves {seen}\n{compose_stack.logs()}"

    # When production is rolled back to v1 (a version it ran) through the same file
    out = promote(compose_stack, promotions_dir, 1, rollback=True)
    # Then the alias and the api are back on v1
    assert client.get_model_version_by_alias(MODEL, "production").version == "1", out
    seen = served_version(compose_stack, "1")
    assert seen == "1", f"api serves {seen} after the rollback\n{compose_stack.logs()}"
    ready = http_json(f"{compose_stack.api_url}/ready")
    assert ready, ready


def test_serve_image_is_small_non_root_and_has_no_training_packages(
    docker_client: docker.DockerClient, stack_images: dict[str, str]
) -> None:
    # Given the serve image
    image = docker_client.images.get(stack_images["serve"])
    config = image.attrs["Config"]
    # Then it runs as uid 10001 with a python health check (no curl in the image)
    assert config["User"].split(":")[0] == "10001"
    assert "python" in " ".join(config["Healthcheck"]["Test"])

    # When python inside it lists the installed distributions and the user
    code = (
        "import importlib.metadata as m, json, os; "
        "print(json.dumps({'uid': os.getuid(), "
        "'dists': sorted({d.metadata['Name'].lower() for d in m.distributions()})}))"
    )
    raw = docker_client.containers.run(
        image.id, entrypoint=["python", "-c", code], network_mode="host", remove=True
    )
    found = json.loads(raw)
    # Then it is not root and none of the training or server packages are there
    assert found["uid"] == 10001
    assert not FORBIDDEN_IN_SERVE & set(found["dists"]), found["dists"]
    assert {"mlflow-skinny", "fastapi", "uvicorn", "xgboost-cpu", "msgspec"} <= set(found["dists"])
    # And it stays within the size budget on the Debian base used here
    limit = int(os.environ.get("SERVE_IMAGE_MAX_MB", "350"))
    assert image.attrs["Size"] / 1e6 <= limit


def test_by_id_through_the_api_with_redis_in_the_stack(
    features_stack: Stack, docker_client: docker.DockerClient, promotions_dir: Path
) -> None:
    stack = features_stack
    # Given the stack with the features profile: the api waited for a healthy Redis
    redis = stack.container(docker_client, "redis")
    api = stack.container(docker_client, "api")
    health = redis.attrs["State"]["Health"]
    healthy_at = min(e["End"] for e in health["Log"] if e["ExitCode"] == 0)
    started_at = api.attrs["State"]["StartedAt"]
    assert healthy_at < started_at, (healthy_at, started_at)
    # And Redis runs as uid 10001 from the image the Dockerfile builds (no pulled image)
    assert redis.attrs["Config"]["User"].split(":")[0] == "10001"
    assert redis.attrs["Config"]["Image"] == docker_stack.docker_images.image_name(
        "redis", docker_stack.IMAGE_TAG
    )
    # And version 1 trained and promoted in the containers
    stack.run_train()
    promote(stack, promotions_dir, 1)
    assert served_version(stack, "1") == "1", stack.logs()

    # When the train image materialises the shipped UCI snapshot into the compose Redis
    out = stack.run_train(
        "features", "materialize", "--input", "data/uci_credit_card.csv.gz",
        "--rejects", "/tmp/uci.rejects.parquet", env={"ML_FEATURES_REDIS_URL": stack.redis_url},
    )  # fmt: skip
    # Then the compose Redis holds it as the current snapshot (read from the host)
    store = SyncRedis(stack.redis_url)
    try:
        current = store.client.get(KEYS.pointer)
        assert current is not None, f"no current snapshot after materialize:\n{out}"
        snapshot = SnapshotInfo.from_redis(
            int(current), store.client.hgetall(KEYS.meta(int(current)))
        )
    finally:
        store.close()
    assert snapshot.rows == 30_000, out

    # Then /predict/by-id through the api answers /predict's scores for the same rows
    rows = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz")[["ID", *FEATURES]]
    sample = rows.sample(300, random_state=7)
    ids = [str(i) for i in sample["ID"]]
    records = [
        {c.name: (int(v) if c.dtype == "int" else float(v))
         for c, v in zip(FEATURE_COLUMNS, r, strict=True)}
        for r in sample[FEATURES].itertuples(index=False, name=None)
    ]  # fmt: skip
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        by_id = client.post("/predict/by-id", json={"ids": ids})
        direct = client.post("/predict", json={"records": records})
        assert by_id.status_code == 200, by_id.text
        assert direct.status_code == 200, direct.text
        body = by_id.json()
        assert [p["id"] for p in body["predictions"]] == ids
        assert body["model"]["version"] == "1"
        assert body["features"]["snapshot"] == snapshot.snapshot
        served = np.array([p["probability"] for p in body["predictions"]])
        expected = np.array([p["probability"] for p in direct.json()["predictions"]])
        assert np.abs(served - expected).max() <= 1e-9
        # And an unknown id is a 404 naming the snapshot
        unknown = client.post("/predict/by-id", json={"ids": ["99999999"]})
        assert unknown.status_code == 404, unknown.text
        assert f"snapshot {snapshot.snapshot}" in unknown.json()["message"]
        # And /metadata names the snapshot the api reads
        metadata = client.get("/metadata").json()
        assert metadata["features"]["snapshot"]["snapshot"] == snapshot.snapshot
