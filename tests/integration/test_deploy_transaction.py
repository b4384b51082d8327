"""`mlops deploy` as one transaction (with `mlops release create|verify` and `mlops smoke`), on
real parts: a moto server (ECR, ECS), a real `mlflow server` and real `python -m serve`
processes standing in for the service's tasks.

moto runs no task, so `TaskStandIn` plays ECS: whenever the service names another task
definition it restarts `python -m serve` as that revision says (container environment, plus the
git SHA the fake image "contains"); the smoke URL points at it. Services have desiredCount 0 (moto
reports those stable); the stuck and circuit-breaker cases inject a rollout observer, the one
boundary that cannot run here.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.ecs_standin import Build, TaskStandIn
from tests.fixtures.services import MlflowServer

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from conftest_serve import log_tiny_version

ROOT = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).with_name("mlops")
REGION = "eu-west-1"
REPO = "credit-risk-serve"
MLFLOW_REPO = "credit-risk-mlflow"
SHA = {1: "1" * 40, 2: "2" * 40, 3: "3" * 40}
GATES = ROOT / "tests" / "fixtures" / "tiny_model_gates.yaml"

pytestmark = pytest.mark.timeout(600)


def _aws(name: str, endpoint: str) -> Any:
    return boto3.client(
        name, region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


@dataclass
class World:
    """One model, an ECR repository, a staging and a production service, and their stand-ins."""

    moto: str
    tracking: str
    tmp: Path
    model: str
    repo_url: str = ""
    images: dict[int, str] = field(default_factory=dict)  # build number -> image by digest
    builds: dict[str, Build] = field(default_factory=dict)
    tds: dict[str, str] = field(default_factory=dict)  # env -> first task definition
    versions: list[int] = field(default_factory=list)

    @property
    def ecs(self) -> Any:
        return _aws("ecs", self.moto)

    @property
    def ecr(self) -> Any:
        return _aws("ecr", self.moto)

    def cluster(self, env: str) -> str:
        return f"{self.model}-{env}"

    def image(self, n: int, repo: str = REPO, **env: str) -> str:
        """Register a fake image (build n) in ECR; the stand-in runs it with SHA[n] + env."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{hashlib.sha256(repo.encode()).hexdigest()}"},
                "layers": [
                    {"digest": f"sha256:{hashlib.sha256(f'{n}{env}'.encode()).hexdigest()}"}
                ],
            }
        )
        digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"
        self.ecr.put_image(
            repositoryName=repo, imageManifest=manifest, imageTag=f"{n}-{uuid.uuid4().hex[:6]}",
            imageDigest=digest,
        )  # fmt: skip
        uri = self.ecr.describe_repositories(repositoryNames=[repo])["repositories"][0][
            "repositoryUri"
        ]
        ref = f"{uri}@{digest}"
        self.builds[ref] = Build(SHA.get(n, "f" * 40), dict(env))
        return ref

    def service_td(self, env: str) -> str:
        svc = self.ecs.describe_services(cluster=self.cluster(env), services=["api"])
        return str(svc["services"][0]["taskDefinition"])

    def td_doc(self, td: str) -> dict[str, Any]:
        return dict(self.ecs.describe_task_definition(taskDefinition=td)["taskDefinition"])

    def revisions(self, env: str) -> list[str]:
        return list(
            self.ecs.list_task_definitions(familyPrefix=f"{self.model}-{env}-api")[
                "taskDefinitionArns"
            ]
        )

    def env(self, env: str, url: str, **extra: str) -> dict[str, str]:
        """The environment `mlops` gets from a deploy job (CONTRACTS.md names)."""
        out = {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.tracking,
            "AWS_ENDPOINT_URL": self.moto,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "SERVE_MODEL_NAME": self.model,
            "ECS_CLUSTER": self.cluster(env),
            "ECS_SERVICE": "api",
            "SERVICE_URL": url,
            "ML_PROMOTE_GATES_FILE": str(GATES),
            "DEPLOY_POLL_INTERVAL": "0.2",
            "DEPLOY_ROLLOUT_TIMEOUT": "20",
            "DEPLOY_SMOKE_TIMEOUT": "40",
        }
        for key in ("GITHUB_RUN_ID", "GITHUB_OUTPUT", "GITHUB_ACTIONS", "ML_TRACKING_URI"):
            out.pop(key, None)
        return {**out, **extra}

    def mlops(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MLOPS), *args], cwd=self.tmp, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    def standin(self, env: str) -> TaskStandIn:
        return TaskStandIn(
            endpoint=self.moto, region=REGION, cluster=self.cluster(env), service="api",
            tracking_uri=self.tracking, model=self.model, builds=self.builds,
            log=self.tmp / f"serve-{env}.log",
        )  # fmt: skip

    def registry(self) -> Any:
        from ml.registry import Registry

        return Registry(self.tracking)

    def tags(self) -> dict[str, str]:
        state = self.registry().model_state(self.model)
        assert state is not None
        return dict(state.tags)

    def alias(self, env: str) -> int | None:
        state = self.registry().model_state(self.model)
        return state.aliases.get(env) if state else None

    def verify(self, rid: str) -> None:
        """What CD's verify step records after staging's e2e (the verb is tested elsewhere)."""
        from ml.deploy import release as releases

        releases.verify(self.registry(), self.model, rid, "staging", checks=["e2e"], run_url=None)

    def ship(self, standin: TaskStandIn, env: str, rid: str) -> None:
        """A clean deploy, in-process (setup for the test that follows; saves a CLI start)."""
        from ml.deploy import ecs

        _in_process(self, env, standin.url, ecs.observe, rid)

    def release(self, rid: str, build: int, version: int, mlflow: str | None = None) -> Any:
        from ml.deploy import release as releases

        rel = releases.build(rid, SHA[build], self.images[build], mlflow, {self.model: version})
        return releases.create(self.registry(), self.model, rel)[0]


def _setup(moto: str, mlflow_server: MlflowServer, tmp: Path, builds: int = 2) -> World:
    """Two registered versions; ECR with builds 1..n; staging and production services whose
    first revision runs a bootstrap image (nothing answers until a release is deployed)."""
    w = World(moto, mlflow_server.uri, tmp, f"cr-{uuid.uuid4().hex[:8]}")
    # fluent() restores the process-wide MLflow URIs log_tiny_version sets (no leak into the
    # tests that run after these, nor into the processes they start).
    with w.registry().fluent():
        w.versions = [int(log_tiny_version(w.tracking, w.model, seed)) for seed in range(2)]
    ecr = w.ecr
    for repo in (REPO, MLFLOW_REPO):
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    w.repo_url = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0][
        "repositoryUri"
    ]
    w.images = {n: w.image(n) for n in range(1, builds + 1)}
    for env in ("staging", "production"):
        w.ecs.create_cluster(clusterName=w.cluster(env))
        td = w.ecs.register_task_definition(
            family=f"{w.model}-{env}-api", networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"], cpu="512", memory="1024",
            containerDefinitions=[{
                "name": "serve", "image": f"{w.repo_url}:bootstrap", "essential": True,
                "environment": [{"name": "SERVE_MODEL_ALIAS", "value": env}],
            }],
            tags=[{"key": "env", "value": env}],
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        w.ecs.create_service(
            cluster=w.cluster(env), serviceName="api", taskDefinition=td, desiredCount=0
        )
        w.tds[env] = td
    return w


@pytest.fixture
def world(moto_url: str, mlflow_sqlite_server: MlflowServer, tmp_path: Path) -> World:
    """A fresh model and services for one test (the servers are shared)."""
    return _setup(moto_url, mlflow_sqlite_server, tmp_path)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _deploy(w: World, env: str, standin: TaskStandIn, rid: str, **extra: str) -> Any:
    return w.mlops(w.env(env, standin.url, **extra), "deploy", "--env", env, "--release", rid)


def _deploy_record(w: World, env: str) -> dict[str, Any]:
    return dict(json.loads(w.tags()[f"deploy.{env}"]))


def _snapshot(w: World, env: str) -> dict[str, Any]:
    """Everything a deploy leaves in `env`, with times, run URLs and the names of the model and
    the environment (which differ between two environments by construction) taken out."""
    state = w.registry().model_state(w.model)
    assert state is not None
    record = {
        k: v for k, v in _deploy_record(w, env).items() if k not in ("time", "run_url", "actor")
    }
    td = w.service_td(env)
    version = state.aliases[env]
    snap = {
        "alias": version,
        "stages": {v.version: v.stage for v in state.versions.values()},
        "service_td": td,
        "revisions": len(w.revisions(env)),
        "image": w.td_doc(td)["containerDefinitions"][0]["image"],
        "record": record,
        "pending": f"promotion.{env}.pending" in state.tags,
        "lease": "lease" in state.tags,
        "applied": state.tags.get(f"promotion.{env}.version"),
        "apply_records": sorted(
            k for k in state.versions[version].tags if k.startswith(f"promotion.{env}.")
        ),
    }
    text = json.dumps(snap, sort_keys=True).replace(w.model, "M")
    for where in ("-{}-", "-{}/", ".{}."):  # ARNs, the service name, tag keys
        text = text.replace(where.format(env), where.format("ENV"))
    return dict(json.loads(text))


# --- the clean path ------------------------------------------------------------------------


def test_clean_staging_then_production_deploy_of_one_release(world: World) -> None:
    w = world
    with w.standin("staging") as stg, w.standin("production") as prd:
        # Given release r1 (build 1, model v1), created through the verb from its pushed images
        spec = w.tmp / "promotions.yaml"
        spec.write_text(f"models:\n  {w.model}:\n    version: 1\n")
        pushed = w.tmp / "images.json"
        pushed.write_text(json.dumps({"git_sha": SHA[1], "images": {"serve": w.images[1]}}))
        base = w.env("staging", stg.url)
        out = _ok(w.mlops(base, "release", "create", "--images", str(pushed), "--id", "r1"))
        assert "release r1 created" in out
        # When staging deploys it, e2e passes and CD records the verification
        _ok(_deploy(w, "staging", stg, "r1"))
        _ok(w.mlops(base, "release", "verify", "--env", "staging", "--release", "r1"))
        # And terraform registers a new production revision (an env change) meanwhile
        doc = w.td_doc(w.tds["production"])
        tf = w.ecs.register_task_definition(
            family=doc["family"], networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="1024", memory="2048",
            containerDefinitions=[{**doc["containerDefinitions"][0], "environment": [
                {"name": "SERVE_MODEL_ALIAS", "value": "production"},
                {"name": "TF_CHANGE", "value": "kept"}]}],
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        assert w.service_td("production") == w.tds["production"]  # the service still runs :1
        # And production deploys the same release after approval
        _ok(_deploy(w, "production", prd, "r1"))

        # Then both environments run the image staging verified, by digest, and serve v1 @ sha1
        stg_td, prd_td = w.service_td("staging"), w.service_td("production")
        assert w.td_doc(stg_td)["containerDefinitions"][0]["image"] == w.images[1]
        assert w.td_doc(prd_td)["containerDefinitions"][0]["image"] == w.images[1]
        for standin in (stg, prd):
            meta = standin.metadata()
            assert meta["model"]["version"] == "1"
            assert meta["deployment"]["git_commit"] == SHA[1]
        # And production's revision was built from the family's latest (terraform's) revision
        new = w.td_doc(prd_td)
        assert prd_td.endswith(":3")
        assert tf.endswith(":2")
        assert {"name": "TF_CHANGE", "value": "kept"} in new["containerDefinitions"][0][
            "environment"
        ]
        assert (new["cpu"], new["memory"]) == ("1024", "2048")
        # And the records say done, nothing pending, lease released, r1 verified in both
        assert _deploy_record(w, "production")["phase"] == "done"
        assert _deploy_record(w, "production")["previous"]["task_definition"] == w.tds["production"]
        tags = w.tags()
        assert not any(k.endswith(".pending") for k in tags)
        assert "lease" not in tags
        rel = json.loads(tags["release.r1"])
        assert set(rel["verified"]) == {"staging", "production"}
        assert rel["verified"]["staging"]["checks"] == ["smoke", "e2e"]

        # When production deploys r1 again (a rerun): a no-op, no new revision
        revisions = w.revisions("production")
        out = _ok(_deploy(w, "production", prd, "r1"))
        assert "already deployed and verified" in out
        assert w.revisions("production") == revisions


# --- failures are reverted, alias and task definition both ---------------------------------


def test_failed_smoke_reverts_alias_and_task_definition(world: World) -> None:
    w = world
    with w.standin("staging") as stg:
        # Given staging runs r1 (v1, build 1), and production holds v1 too
        w.release("r1", 1, 1)
        w.ship(stg, "staging", "r1")
        good_td = w.service_td("staging")
        w.registry().set_alias(w.model, "production", 1)
        # And two releases of v2 whose images misbehave: one never gets ready (5xx), one
        # follows the production alias (it names v1, another version)
        cases = [
            ("r2", 2, {"SERVE_MODEL_NAME": "no-such-model"}, "/ready answered 503"),
            ("r3", 3, {"SERVE_MODEL_ALIAS": "production"}, "serves"),
        ]
        for rid, build, broken, symptom in cases:
            w.images[build] = w.image(build, **broken)
            w.release(rid, build, 2)
            # When staging deploys it
            proc = _deploy(w, "staging", stg, rid, DEPLOY_SMOKE_TIMEOUT="20")
            # Then it exits 9 naming the failed step and the symptom, after a verified revert
            assert proc.returncode == 9, proc.stdout + proc.stderr
            err = " ".join(proc.stderr.split())
            assert "failed at step smoke" in err, err
            assert symptom in err, err
            assert "REVERTED" in err
            # And alias and task definition are both back, and the stand-in serves v1 again
            assert w.alias("staging") == 1
            assert w.service_td("staging") == good_td
            meta = stg.metadata()
            assert (meta["model"]["version"], meta["deployment"]["git_commit"]) == ("1", SHA[1])
            record = _deploy_record(w, "staging")
            assert (record["phase"], record["failed_step"], record["release"]) == (
                "reverted", "smoke", rid,
            )  # fmt: skip
            assert "promotion.staging.pending" not in w.tags()


# --- an interrupted deploy -------------------------------------------------------------------


def test_sigkill_between_alias_move_and_rollout_then_the_rerun_converges(world: World) -> None:
    w = world
    with w.standin("staging") as stg, w.standin("production") as prd:
        # Given r1 runs in staging and production (production is the clean reference below)
        w.release("r1", 1, 1)
        w.release("r2", 2, 2)
        _ok(_deploy(w, "staging", stg, "r1", ML_PROMOTE_STAGES="false"))
        w.verify("r1")
        _ok(_deploy(w, "production", prd, "r1", ML_PROMOTE_STAGES="false"))
        # When a deploy of r2 to staging is killed right after it moved the alias
        marker = w.tmp / "alias-moved"
        env = w.env("staging", stg.url, ML_PROMOTE_STAGES="false")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.deploy_child", str(marker), "r2", "staging",
             str(GATES)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stdout.read().decode() if child.stdout else ""
            assert time.monotonic() < deadline, "the deploy never reached the alias move"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)

        # Then the records say: a deploy of r2 in staging, interrupted after the alias move
        tags = w.tags()
        record = json.loads(tags["deploy.staging"])
        assert (record["release"], record["phase"]) == ("r2", "alias-moved")
        assert record["previous"]["versions"] == {w.model: 1}
        assert record["previous"]["task_definition"] == w.revisions("staging")[1]
        pending = json.loads(tags["promotion.staging.pending"])
        assert (pending["op"], pending["release"], pending["version"], pending["previous"]) == (
            "deploy", "r2", 2, 1,
        )  # fmt: skip
        assert json.loads(tags["lease"])["owner"]  # the dead run's lease is still there
        from ml.deploy.records import interrupted

        said = interrupted(tags, "staging")
        assert said is not None
        assert said.startswith("interrupted deploy of release r2 in staging")
        assert w.alias("staging") == 2  # moved, yet never rolled out or smoke-tested
        assert w.service_td("staging").endswith(":2")

        # When the deploy of r2 runs again (same owner: a rerun of the same workflow run)
        out = _ok(_deploy(w, "staging", stg, "r2", ML_PROMOTE_STAGES="false"))
        assert "resuming the interrupted deploy of r2" in out
        # And production deploys r2 cleanly, as the reference
        w.verify("r2")
        _ok(_deploy(w, "production", prd, "r2", ML_PROMOTE_STAGES="false"))

    # Then staging ended in exactly the state of production's clean deploy
    staging, production = _snapshot(w, "staging"), _snapshot(w, "production")
    assert staging == production
    assert staging["revisions"] == 3
    assert staging["alias"] == 2
    assert not staging["pending"]
    assert staging["record"]["phase"] == "done"


# --- production takes only verified releases -------------------------------------------------


def test_production_refuses_a_release_staging_never_verified(world: World) -> None:
    w = world
    with w.standin("staging") as stg:
        w.release("r1", 1, 1)
        w.ship(stg, "staging", "r1")  # deployed, but no e2e verification recorded
        w.release("r2", 2, 2)  # never deployed anywhere
        revisions = w.revisions("production")
        for rid, missing in (("r1", "no e2e verification"), ("r2", "never deployed it")):
            proc = _deploy(w, "production", stg, rid)
            err = " ".join(proc.stderr.split())
            assert proc.returncode == 14, err
            assert f"release {rid} is not verified in staging: missing verified.staging" in err
            assert missing in err
        # Nothing moved in production
        assert w.alias("production") is None
        assert w.revisions("production") == revisions
        assert "deploy.production" not in w.tags()


# --- break-glass -------------------------------------------------------------------------------


def test_break_glass_rollback_end_to_end(world: World) -> None:
    w = world
    with w.standin("staging") as stg, w.standin("production") as prd:
        # Given r1 then r2 went staging → verified → production
        for rid, build in (("r1", 1), ("r2", 2)):
            w.release(rid, build, build)
            w.ship(stg, "staging", rid)
            w.verify(rid)
            w.ship(prd, "production", rid)
        assert prd.metadata()["model"]["version"] == "2"
        # When the break-glass runs (workflow_dispatch after one approval)
        out_file = w.tmp / "github_output"
        out = _ok(
            w.mlops(
                w.env("production", prd.url, GITHUB_OUTPUT=str(out_file)),
                "deploy", "--env", "production", "--previous-verified", "--reason", "bad scores",
            )
        )  # fmt: skip
        # Then production runs r1 again: alias v1 and build 1's image, served now
        assert w.alias("production") == 1
        td = w.service_td("production")
        assert w.td_doc(td)["containerDefinitions"][0]["image"] == w.images[1]
        meta = prd.metadata()
        assert (meta["model"]["version"], meta["deployment"]["git_commit"]) == ("1", SHA[1])
        # And it says which PR records it, and gives the workflow the values for it
        assert f"mlops rollback {w.model} --to 1 --pr" in " ".join(out.split())
        assert "rollback_to=1" in out_file.read_text()
        # And r2 is withdrawn from production, the record names the break-glass
        rel2 = json.loads(w.tags()["release.r2"])
        assert rel2["withdrawn"]["production"]["reason"] == "bad scores"
        record = _deploy_record(w, "production")
        assert record["breakglass"]["from"] == "r2"
        assert record["phase"] == "done"
        # And r2 cannot be deployed to production again
        proc = _deploy(w, "production", prd, "r2")
        assert proc.returncode == 14
        assert "withdrawn" in proc.stderr


# --- rollout failures (the injected observer: moto never rolls out nor trips a breaker) -----


def _in_process(w: World, env: str, url: str, observer: Any, rid: str) -> Any:
    from ml.deploy import release as releases
    from ml.deploy.ecs import ServiceRef
    from ml.deploy.transaction import Deployment, Options, Target
    from ml.promotions.gates import load_gates

    opts = Options(
        gates=load_gates(GATES), rollout_timeout=1.5, poll_interval=0.2,
        smoke_timeout=40, smoke_poll=0.3, owner="test", observer=observer,
    )  # fmt: skip
    rel = releases.get(w.registry(), w.model, rid)
    target = Target(env, ServiceRef(w.cluster(env), "api"), url)
    return Deployment(w.registry(), w.ecs, w.ecr, w.model, target, opts).run(rel)


def _circuit_breaker(w: World, good_td: str) -> Any:
    """What describe_services shows after ECS's circuit breaker rolled a deployment back
    (AWS: the failed deployment stays, rolloutState FAILED; a new PRIMARY runs the last
    completed revision and the service names it)."""
    from ml.deploy import ecs

    def observer(client: Any, ref: Any, td: str) -> Any:
        if td == good_td:
            return ecs.observe(client, ref, td)
        doc = {
            "taskDefinition": good_td,
            "deployments": [
                {"status": "PRIMARY", "taskDefinition": good_td, "desiredCount": 1,
                 "runningCount": 0, "rolloutState": "IN_PROGRESS",
                 "rolloutStateReason": "ECS deployment ecs-svc/2 in progress."},
                {"status": "ACTIVE", "taskDefinition": td, "desiredCount": 0,
                 "runningCount": 0, "failedTasks": 3, "rolloutState": "FAILED",
                 "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start."},
            ],
        }  # fmt: skip
        return ecs.classify(doc, td)

    return observer


def test_rollout_failures_are_reported_as_what_they_are_and_reverted(world: World) -> None:
    from ml.deploy import ecs
    from ml.deploy.ecs import Rollout
    from ml.errors import DeployError

    w = world
    with w.standin("staging") as stg:
        w.release("r1", 1, 1)
        w.release("r2", 2, 2)
        w.ship(stg, "staging", "r1")
        good_td = w.service_td("staging")

        # When ECS's circuit breaker rolls the deployment of r2 back
        with pytest.raises(DeployError) as caught:
            _in_process(w, "staging", stg.url, _circuit_breaker(w, good_td), "r2")
        # Then it is reported as a circuit-breaker rollback (not "superseded"), and reverted
        msg = str(caught.value)
        assert "failed at step rollout: ECS circuit-breaker rollback" in msg
        assert "tasks failed to start" in msg
        assert "superseded" not in msg
        assert w.alias("staging") == 1
        assert w.service_td("staging") == good_td
        assert stg.metadata()["model"]["version"] == "1"

        # When the rollout of r2 never finishes (moto with desiredCount 1 behaves so)
        def stuck(client: Any, ref: Any, td: str) -> Any:
            if td == good_td:
                return ecs.observe(client, ref, td)
            return Rollout("in-progress", "0/1 tasks running")

        started = time.monotonic()
        with pytest.raises(DeployError, match=r"failed at step rollout.*not stable after 2 s"):
            _in_process(w, "staging", stg.url, stuck, "r2")
        # Then the wait is bounded, and both are reverted
        assert time.monotonic() - started < 60
        assert w.alias("staging") == 1
        assert w.service_td("staging") == good_td
        assert _deploy_record(w, "staging")["phase"] == "reverted"


# --- refusals before anything moves ----------------------------------------------------------


def test_a_live_lease_of_another_owner_refuses_the_deploy(world: World) -> None:
    w = world
    w.release("r1", 1, 1)
    lease = {"owner": "https://github.com/o/r/actions/runs/1", "run_url": None,
             "acquired": "2030-01-01T00:00:00Z", "expires": "2999-01-01T00:00:00Z"}  # fmt: skip
    w.registry().set_model_tag(w.model, "lease", json.dumps(lease))
    proc = w.mlops(w.env("staging", "http://127.0.0.1:9"), "deploy", "--env", "staging",
                   "--release", "r1")  # fmt: skip
    assert proc.returncode == 11
    assert "is leased by https://github.com/o/r/actions/runs/1" in " ".join(proc.stderr.split())
    assert w.alias("staging") is None
    assert "deploy.staging" not in w.tags()


def test_missing_configuration_is_named_and_nothing_moves(world: World) -> None:
    w = world
    w.release("r1", 1, 1)
    env = w.env("staging", "")
    for name in ("SERVICE_URL", "ECS_CLUSTER"):
        env.pop(name)
    proc = w.mlops(env, "deploy", "--env", "staging", "--release", "r1")
    assert proc.returncode == 2
    assert "missing configuration: ECS_CLUSTER, SERVICE_URL" in proc.stderr
    assert w.alias("staging") is None
    smoke = w.mlops(env, "smoke", "--release", "r1")
    assert smoke.returncode == 2
    assert "SERVICE_URL" in smoke.stderr


def test_releases_are_immutable(world: World) -> None:
    w = world
    spec = w.tmp / "promotions.yaml"
    spec.write_text(f"models:\n  {w.model}:\n    version: 1\n")
    env = w.env("staging", "http://127.0.0.1:9")
    args = ("release", "create", "--id", "r1", "--git-sha", SHA[1], "--serve-image")
    _ok(w.mlops(env, *args, w.images[1]))
    again = _ok(w.mlops(env, *args, w.images[1]))
    assert "already exists (same content)" in again
    other = w.mlops(env, *args, w.images[2])
    assert other.returncode == 14
    assert "exists with other content (releases are immutable): serve_image" in other.stderr
    from ml.deploy import release as releases

    assert [r.serve_image for r in releases.list_all(w.registry(), w.model)] == [w.images[1]]


# --- the MLflow service runs the image CD pushed ------------------------------------------


def test_mlflow_service_deploys_the_release_image_only_when_its_digest_changed(
    world: World, mlflow_sqlite_server: MlflowServer
) -> None:
    w = world
    # Given the platform's MLflow service on a bootstrap image (the real server answers /health)
    w.ecs.create_cluster(clusterName=f"{w.model}-platform")
    td = w.ecs.register_task_definition(
        family=f"{w.model}-mlflow",
        containerDefinitions=[{"name": "mlflow", "image": "bootstrap", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    w.ecs.create_service(
        cluster=f"{w.model}-platform", serviceName="mlflow", taskDefinition=td, desiredCount=0
    )
    mlflow_image = w.image(1, repo=MLFLOW_REPO)
    w.release("r1", 1, 1, mlflow=mlflow_image)
    env = {**w.env("staging", ""), "MLFLOW_ECS_CLUSTER": f"{w.model}-platform",
           "MLFLOW_ECS_SERVICE": "mlflow"}  # fmt: skip
    # When CD deploys the release's mlflow image
    out = _ok(w.mlops(env, "deploy", "--service", "mlflow", "--release", "r1"))
    # Then the service runs it, smoke-tested on /health, and a rerun changes nothing
    svc = w.ecs.describe_services(cluster=f"{w.model}-platform", services=["mlflow"])
    new = svc["services"][0]["taskDefinition"]
    assert w.td_doc(new)["containerDefinitions"][0]["image"] == mlflow_image
    assert "deployed release r1 to mlflow" in " ".join(out.split())
    assert json.loads(w.tags()["deploy.mlflow"])["phase"] == "done"
    again = _ok(w.mlops(env, "deploy", "--service", "mlflow", "--release", "r1"))
    assert "digest unchanged" in again
    assert urllib.request.urlopen(f"{mlflow_sqlite_server.uri}/health", timeout=5).status == 200
