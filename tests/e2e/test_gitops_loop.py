"""The whole GitOps loop, end to end.

Without E2E_BASE_URL: in a temporary git repository, with an embedded MLflow store, moto in server
mode for ECR/ECS and real `python -m serve` processes standing in for the ECS tasks:

    two versions registered -> main names v1 -> apply staging, deploy, apply production
    -> branch sets v2 -> validate + plan -> merge -> release R (the commit's image digest)
    -> `mlops deploy --env staging --release R` (alias + ECS on moto + smoke test against the
    staging server) -> apply production -> production serves v2
    -> `mlops rollback` (v1) -> merge -> apply staging, production -> production serves v1.

With E2E_BASE_URL (the CD e2e job against staging): the same checks a user makes, against that
URL: /health, /metadata names EXPECTED_MODEL_VERSION (when set), /predict answers with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest_serve import fit_tiny, record, serve_process  # noqa: E402

from tests.fixtures.ecs_standin import Build, TaskStandIn  # noqa: E402
from tests.fixtures.services import start_moto_server, stop_moto_server  # noqa: E402

BASE_URL = os.environ.get("E2E_BASE_URL")
MODEL = "credit-risk"
REGION = "eu-west-1"

# Gates relaxed for tiny models; integrity gates (exists, READY, flavor, signature) still apply.
GATES = """\
defaults:
  required_tags: []
  floors: {}
  ceilings: {}
  max_regression: {}
  allow_schema_change: false
  servable_flavors: [xgboost]
models: {}
"""


def register(tracking_uri: str, seed: int) -> str:
    """A tiny booster logged like ml.train does; requirements given, so none are inferred."""
    import mlflow
    from mlflow.models import infer_signature

    from ml.registry import Registry

    registry = Registry(tracking_uri)
    artifacts = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
    experiment = registry.ensure_experiment("e2e", artifacts.as_uri())
    model, x = fit_tiny(seed)
    example = x.head(5)
    with registry.fluent(), mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("roc_auc", 0.5 + seed / 100)
        info = mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            model_format="ubj",
            registered_model_name=MODEL,
            pip_requirements=["xgboost"],
        )
    return str(info.registered_model_version)


def _spec(version: int, note: str) -> str:
    return f'# desired state\nmodels:\n  {MODEL}:\n    version: {version}\n    note: "{note}"\n'


# --- against a deployed service -------------------------------------------------------------


@pytest.mark.skipif(not BASE_URL, reason="E2E_BASE_URL not set: the local loop runs instead")
def test_deployed_service_serves_the_promoted_version() -> None:
    base = str(BASE_URL).rstrip("/")
    expected = os.environ.get("EXPECTED_MODEL_VERSION") or None
    headers = {}
    if os.environ.get("E2E_API_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['E2E_API_TOKEN']}"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        assert client.get("/health").status_code == 200
        meta = client.get("/metadata").json()
        if expected:
            assert str(meta["model"]["version"]) == expected
        answer = client.post("/predict", json=record(1))
        assert answer.status_code == 200, answer.text
        assert str(meta["model"]["version"]) in answer.text


# --- the local loop -------------------------------------------------------------------------


def _run(cwd: Path, env: dict[str, str], *cmd: str) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    server = start_moto_server(tmp_path / "moto.log")
    yield server.url
    stop_moto_server(server)


def _metadata_version(url: str, expected: str, timeout: float = 60) -> str:
    """Poll /metadata until it names `expected` (the server follows its alias)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = str(httpx.get(f"{url}/metadata", timeout=5).json()["model"]["version"])
        if seen == expected:
            return seen
        time.sleep(0.5)
    return seen


@pytest.mark.skipif(bool(BASE_URL), reason="E2E_BASE_URL set: checking the deployed service")
def test_gitops_loop(tmp_path: Path, moto: str) -> None:
    import boto3

    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "ML_TRACKING_URI": tracking,
        "MLFLOW_TRACKING_URI": tracking,
        "ML_MODEL_NAME": MODEL,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.com",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.com",
    }
    for key in ("E2E_BASE_URL", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        env.pop(key, None)
    mlops = str(BIN / "mlops")

    def git(*args: str) -> str:
        return _run(repo, env, "git", *args).strip()

    def apply(target: str) -> None:
        _run(repo, env, mlops, "promote", "apply", "--env", target)

    # Given two registered versions and a repository whose main names v1
    started = time.monotonic()
    assert register(tracking, seed=0) == "1"
    assert register(tracking, seed=1) == "2"
    git("init", "-q", "-b", "main")
    (repo / "config" / "gates.yaml").write_text(GATES)
    (repo / "promotions.yaml").write_text(_spec(1, "first"))
    git("add", ".")
    git("commit", "-q", "-m", "v1")
    apply("staging")
    apply("production")
    print(f"registered and applied v1 in {time.monotonic() - started:.0f} s")

    # And ECS (moto): an ECR repository and a service on a first task definition
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=moto, **creds)
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto, **creds)
    repo_url = ecr.create_repository(repositoryName="credit-risk-serve")["repository"][
        "repositoryUri"
    ]
    ecs.create_cluster(clusterName="staging")
    first = ecs.register_task_definition(
        family="credit-risk-serve",
        containerDefinitions=[{"name": "serve", "image": f"{repo_url}:boot", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="staging", serviceName="api", taskDefinition=first, desiredCount=0)

    serve_env = {"SERVE_TRACKING_URI": tracking, "SERVE_POLL_INTERVAL": "0.5"}
    with serve_process(
        {**serve_env, "SERVE_MODEL_ALIAS": "production"}, tmp_path / "prd.log"
    ) as prd:
        assert _metadata_version(prd, "1") == "1"

        # When a branch promotes v2, CI validates and plans it, and it is merged
        git("switch", "-q", "-c", "promote/v2")
        (repo / "promotions.yaml").write_text(_spec(2, "retrain v2"))
        git("commit", "-q", "-am", "promote v2")
        _run(repo, env, mlops, "promote", "validate")
        plan = _run(repo, env, mlops, "promote", "plan", "--format", "json")
        assert json.loads(plan), plan
        git("switch", "-q", "main")
        git("merge", "-q", "--no-ff", "promote/v2", "-m", "Merge promote/v2")
        sha = git("rev-parse", "HEAD")

        # Then CD: the image of this commit (its digest in ECR) becomes release R, and
        # `mlops deploy` moves the staging alias and rolls ECS out; the staging server stands in
        # for the task running the image built from `sha` (SERVE_GIT_COMMIT, as the image bakes)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "layers": [{"digest": "sha256:" + "0" * 64}],
            }
        )
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        ecr.put_image(
            repositoryName="credit-risk-serve", imageManifest=manifest, imageTag=sha,
            imageDigest=digest,
        )  # fmt: skip
        # ECS's part: the stand-in runs what the service's task definition says (the deploy
        # registers a revision pinning the release's model version next to its digest).
        staging = {"SERVE_MODEL_ALIAS": "staging"}
        builds = {
            f"{repo_url}:boot": Build("boot", staging),
            f"{repo_url}@{digest}": Build(sha, staging),
        }
        with TaskStandIn(
            endpoint=moto, region=REGION, cluster="staging", service="api", tracking_uri=tracking,
            model=MODEL, builds=builds, log=tmp_path / "stg.log",
        ) as standin:  # fmt: skip
            stg = standin.url
            _run(repo, env, mlops, "release", "create", "--git-sha", sha,
                 "--serve-image", f"{repo_url}@{digest}")  # fmt: skip
            deploy_env = {
                **env, "ECS_CLUSTER": "staging", "ECS_SERVICE": "api", "SERVICE_URL": stg,
                "SERVE_MODEL_NAME": MODEL, "DEPLOY_POLL_INTERVAL": "0.2",
                "DEPLOY_ROLLOUT_TIMEOUT": "20", "DEPLOY_SMOKE_TIMEOUT": "30",
            }  # fmt: skip
            _run(repo, deploy_env, mlops, "deploy", "--env", "staging", "--release", sha[:12])
            service = ecs.describe_services(cluster="staging", services=["api"])["services"][0]
            assert service["taskDefinition"].endswith(":2")
            # And after approval, production moves to v2 without a restart
            apply("production")
            assert _metadata_version(prd, "2") == "2"

            # When v2 misbehaves: `mlops rollback` writes v1 back; the PR is merged; CD applies
            git("switch", "-q", "-c", "rollback/v1")
            _run(repo, env, mlops, "rollback", MODEL)
            assert "version: 1" in (repo / "promotions.yaml").read_text()
            git("commit", "-q", "-am", "rollback to v1")
            git("switch", "-q", "main")
            git("merge", "-q", "--no-ff", "rollback/v1", "-m", "Merge rollback/v1")
            apply("staging")
            apply("production")

            # Then production serves v1 again (it follows the alias, as compose and local do),
            # while staging's task still serves the release pinned in its task definition until
            # a deploy replaces it
            assert _metadata_version(prd, "1") == "1"
            assert _metadata_version(stg, "2") == "2"
    shutil.rmtree(repo, ignore_errors=True)
