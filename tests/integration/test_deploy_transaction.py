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
from tests.fixtures.local_http import canned
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
TRIVY = ROOT / "tests" / "fixtures" / "trivy"


def recorded_scan(images: list[str], report: str = "report_clean.json") -> Any:
    """A scan record of `images` judged from a recorded trivy result (the vulnerability DB
    cannot be downloaded here; CD scans live): `report_clean.json` passes, `report_high.json`
    holds a HIGH finding with a fix."""
    from ml.deploy import scan

    version = json.loads((TRIVY / "version.json").read_text())
    doc = json.loads((TRIVY / report).read_text())
    return scan.record({i: doc for i in images}, version, [])


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
        """The environment `mlops` gets from a deploy job (config/platform.yaml's names)."""
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

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=self.tmp,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    def commit(self, message: str) -> str:
        """An empty commit on w.tmp's repository; its SHA."""
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

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
        from ml.deploy import rollout

        _in_process(self, env, standin.url, rollout.observe, rid)

    def release(
        self,
        rid: str,
        build: int,
        version: int,
        mlflow: str | None = None,
        *,
        report: str | None = "report_clean.json",
        git_sha: str | None = None,
    ) -> Any:
        """Create (and seal) a release of build `build` serving `version`, scanned with the
        recorded `report` (None: no scan record)."""
        from ml.deploy import release as releases

        images = [i for i in (self.images[build], mlflow) if i]
        scanned = recorded_scan(images, report) if report else None
        sha = git_sha or SHA[build]
        rel = releases.build(rid, sha, self.images[build], mlflow, {self.model: version}, scanned)
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
    w.git("init", "-q", "-b", "main")
    w.commit("initial")
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


def _deploy(w: World, env: str, standin: TaskStandIn, rid: str, *args: str, **extra: str) -> Any:
    """`mlops deploy` as CD runs it; production orders releases by the history of w.tmp's
    throw-away repository (HEAD), where the fake commits SHA[n] are unknown (unranked)."""
    more = ("--git-ref", "HEAD") if env == "production" else ()
    return w.mlops(
        w.env(env, standin.url, **extra), "deploy", "--env", env, "--release", rid, *more, *args
    )


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
        "lease": any(k == "lease" or k.startswith("lease.") for k in state.tags),
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
        scan_file = w.tmp / "scan.json"
        scan_file.write_text(recorded_scan([w.images[1]]).model_dump_json())
        base = w.env("staging", stg.url, GITHUB_OUTPUT=str(w.tmp / "out"))
        out = _ok(
            w.mlops(base, "release", "create", "--images", str(pushed), "--id", "r1",
                    "--scan", str(scan_file))
        )  # fmt: skip
        assert "release r1 created" in out
        # And the digest carries the release tag the ECR lifecycle keeps, and the seal is output
        tags = w.ecr.describe_images(
            repositoryName=REPO, imageIds=[{"imageDigest": w.images[1].split("@")[1]}]
        )["imageDetails"][0]["imageTags"]
        assert "release-r1" in tags
        digest = (w.tmp / "out").read_text().split("digest=")[1].split()[0]
        assert digest.startswith("sha256:")
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
        # And the approval page names the release, its digest and its staging verification
        page = _ok(w.mlops(base, "release", "summary", "--release", "r1"))
        assert f"record digest: `{digest}`" in page
        assert "- staging: verified (smoke, e2e)" in page
        # And production deploys the same release after approval (bound to the run's digest)
        _ok(_deploy(w, "production", prd, "r1", "--digest", digest))

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
        assert not [k for k in tags if k == "lease" or k.startswith("lease.")]
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
        # ignores the version its revision pins (it serves v1, another version)
        cases = [
            ("r2", 2, {"SERVE_MODEL_NAME": "no-such-model"}, "/ready answered 503"),
            ("r3", 3, {"SERVE_MODEL_VERSION": "1"}, "serves"),
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


def _start_child(w: World, stg: TaskStandIn, rid: str) -> tuple[subprocess.Popen[bytes], Path]:
    """A deploy of `rid` to staging in its own process (and session: signals reach it alone),
    hung in the rollout (deploy_child); its output goes to `<marker>.log`."""
    marker = w.tmp / f"rolling-out-{uuid.uuid4().hex[:6]}"
    env = w.env("staging", stg.url, ML_PROMOTE_STAGES="false")
    with marker.with_suffix(".log").open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.deploy_child", str(marker), rid, "staging",
             str(GATES)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _children.append(child)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, marker.with_suffix(".log").read_text()
        assert time.monotonic() < deadline, "the deploy never reached the rollout"
        time.sleep(0.1)
    return child, marker


_children: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_child_left() -> Any:
    """A deploy child a failed test left behind is killed (its session: nothing else)."""
    yield
    while _children:
        child = _children.pop()
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def test_sigkill_in_the_rollout_then_the_rerun_converges(world: World) -> None:
    w = world
    with w.standin("staging") as stg, w.standin("production") as prd:
        # Given r1 runs in staging and production (production is the clean reference below)
        w.release("r1", 1, 1)
        w.release("r2", 2, 2)
        _ok(_deploy(w, "staging", stg, "r1", ML_PROMOTE_STAGES="false"))
        w.verify("r1")
        _ok(_deploy(w, "production", prd, "r1", ML_PROMOTE_STAGES="false"))
        # When a deploy of r2 to staging is killed while ECS rolls the new revision out
        child, _ = _start_child(w, stg, "r2")
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)

        # Then the records say: a deploy of r2 in staging, interrupted in the rollout
        tags = w.tags()
        record = json.loads(tags["deploy.staging"])
        assert (record["release"], record["phase"]) == ("r2", "rolling-out")
        assert record["previous"]["versions"] == {w.model: 1}
        assert record["previous"]["task_definition"] == w.revisions("staging")[1]
        pending = json.loads(tags["promotion.staging.pending"])
        assert (pending["op"], pending["release"], pending["version"], pending["previous"]) == (
            "deploy", "r2", 2, 1,
        )  # fmt: skip
        assert json.loads(tags["lease.staging"])["owner"]  # the dead run's lease is still there
        from ml.deploy.records import interrupted

        said = interrupted(tags, "staging")
        assert said is not None
        assert said.startswith("interrupted deploy of release r2 in staging")
        # And the alias has not moved: it records what was verified, not what is rolling out
        assert w.alias("staging") == 1
        assert w.service_td("staging").endswith(":3")
        # And the new revision pins r2's version next to r2's image
        new = w.td_doc(w.service_td("staging"))["containerDefinitions"][0]
        assert new["image"] == w.images[2]
        assert {"name": "SERVE_MODEL_VERSION", "value": "2"} in new["environment"]

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


# --- a release is served as one unit -------------------------------------------------------


class Sampler:
    """Samples what the service answers (/metadata: git SHA, model version) every 50 ms in a
    thread, for as long as the block runs; answers while a task starts (503) are not pairs."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.pairs: list[tuple[str, str]] = []
        self.timed: list[tuple[float, tuple[str, str]]] = []  # (monotonic time, pair)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=2) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    got = client.get(f"{self.url}/metadata")
                    if got.status_code == 200:
                        body = got.json()
                        pair = (body["deployment"]["git_commit"], body["model"]["version"])
                        self.pairs.append(pair)
                        self.timed.append((time.monotonic(), pair))
                self._stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_every_sample_is_one_release_through_deploys_failures_and_a_sigterm(
    world: World,
) -> None:
    from ml.errors import DeployError

    w = world
    old, new = (SHA[1], "1"), (SHA[2], "2")
    with w.standin("staging") as stg:
        # Given staging runs r1 (build 1, v1), and r2 (build 2, v2) is released
        w.release("r1", 1, 1)
        w.release("r2", 2, 2)
        w.ship(stg, "staging", "r1")
        good_td = w.service_td("staging")
        assert stg.metadata()["model"]["pinned"] is True

        def samples_during(action: Any) -> set[tuple[str, str]]:
            with Sampler(stg.url) as sampler:
                action()
                time.sleep(1.0)  # and a second after: a stale hot-load would show here
            assert sampler.pairs, "the service never answered"
            return set(sampler.pairs)

        # When r2's rollout trips ECS's circuit breaker (failed rollout)
        def failed_rollout() -> None:
            with pytest.raises(DeployError, match="circuit-breaker"):
                _in_process(w, "staging", stg.url, _circuit_breaker(w, good_td), "r2")

        # Then every sample is r1's pair, and the alias never moved
        assert samples_during(failed_rollout) <= {old}
        assert w.alias("staging") == 1

        # When r2's smoke test fails (its tasks never get ready: an image that cannot load)
        w.images[3] = w.image(3, SERVE_MODEL_NAME="no-such-model")
        w.release("r3", 3, 2)

        def failed_smoke() -> None:
            proc = _deploy(w, "staging", stg, "r3", DEPLOY_SMOKE_TIMEOUT="8")
            assert proc.returncode == 9, proc.stderr

        # Then every sample is r1's pair (r3's tasks never answered), the alias never moved
        assert samples_during(failed_smoke) <= {old}
        assert w.alias("staging") == 1

        # When a deploy of r2 gets SIGTERM in the middle of its rollout (a cancelled job)
        def sigterm() -> None:
            child, marker = _start_child(w, stg, "r2")
            # ECS (the stand-in) goes on replacing the tasks with r2's pinned revision
            stg.wait_running(":" + w.service_td("staging").rsplit(":", 1)[-1])
            started = time.monotonic()
            child.send_signal(signal.SIGTERM)
            code = child.wait(30)
            took = time.monotonic() - started
            out = marker.with_suffix(".log").read_text()
            # Then it stops before GitHub's SIGKILL (10 s after the first signal), says it was
            # interrupted, exit 16
            assert took < 10, f"{took:.1f} s"
            assert code == 16, out
            assert "interrupted by SIGTERM at step rollout" in " ".join(out.split()), out
            stg.metadata()  # r2's task answers before the sampling ends

        # Then every sample is r1's or r2's pair, never a mix, and the alias did not move
        assert samples_during(sigterm) <= {old, new}
        assert w.alias("staging") == 1
        record = _deploy_record(w, "staging")
        assert (record["release"], record["phase"]) == ("r2", "rolling-out")
        # released on the way out: a later run is not blocked
        assert not [k for k in w.tags() if k.startswith("lease")]

        # When a later run deploys r2 (it resumes), sampled
        def resumed() -> None:
            out = _ok(_deploy(w, "staging", stg, "r2"))
            assert "resuming the interrupted deploy of r2" in out

        # Then every sample is r1's or r2's pair, and the alias moves only now, to v2
        assert samples_during(resumed) <= {old, new}
        assert w.alias("staging") == 2
        assert stg.metadata()["model"]["version"] == "2"
        assert _deploy_record(w, "staging")["phase"] == "done"


# --- a revert never depends on the registry --------------------------------------------------


class TcpProxy:
    """A TCP forwarder in front of the MLflow server: `stop()` is a registry outage for every
    client that goes through it (connection refused), while the server itself runs on for the
    stand-in's tasks (which, like ECS tasks, already loaded their model)."""

    def __init__(self, target: str) -> None:
        import socket
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._open: list[Any] = []
        self.down = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.down:  # (a connection accepted while stopping is refused too)
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.close()

    def stop(self) -> None:
        import socket

        """The outage: the port refuses connections, open ones are cut. shutdown() first: a close()
        alone does not wake the thread blocked in accept(), which keeps the port listening."""
        self.down = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()


def test_a_revert_with_the_registry_down_returns_the_service_to_the_previous_revision(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.adapters.ecs import ServiceRef
    from ml.deploy import release as releases
    from ml.deploy.records import interrupted
    from ml.deploy.transaction import Deployment, Options, Target
    from ml.errors import DeployError
    from ml.promotions.gates import load_gates
    from ml.registry import Registry

    # The deploy's MLflow client fails at once instead of retrying for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    w = world
    proxy = TcpProxy(w.tracking)
    with w.standin("staging") as stg:
        # Given staging runs r1, and the deploy of r2 reaches the registry through the proxy
        w.release("r1", 1, 1)
        w.release("r2", 2, 2)
        w.ship(stg, "staging", "r1")
        good_td = w.service_td("staging")
        breaker = _circuit_breaker(w, good_td)

        # When the registry goes down in the middle of r2's rollout, which then fails
        def outage_then_breaker(client: Any, ref: Any, td: str) -> Any:
            if td != good_td:
                proxy.stop()
            return breaker(client, ref, td)

        opts = Options(
            gates=load_gates(GATES), rollout_timeout=5, poll_interval=0.2, smoke_timeout=20,
            smoke_poll=0.3, revert_smoke_timeout=40, owner="test", observer=outage_then_breaker,
        )  # fmt: skip
        registry = Registry(proxy.url)
        rel = releases.get(registry, w.model, "r2")
        target = Target("staging", ServiceRef(w.cluster("staging"), "api"), stg.url)
        started = time.monotonic()
        with pytest.raises(DeployError) as caught:
            Deployment(registry, w.ecs, w.ecr, w.model, target, opts).run(rel)

        # Then ECS runs the previous revision again and it answers r1's pair (verified)
        msg = " ".join(str(caught.value).split())
        assert "REVERTED" in msg, msg
        assert "registry records were not updated" in msg, msg
        assert w.service_td("staging") == good_td
        meta = stg.metadata()
        assert (meta["deployment"]["git_commit"], meta["model"]["version"]) == (SHA[1], "1")
        assert time.monotonic() - started < 120
        # And the registry (seen directly) still names r1: the alias never moved, and the
        # unfinished record says what the next run must converge from
        assert w.alias("staging") == 1
        said = interrupted(w.tags(), "staging")
        assert said is not None
        assert "interrupted deploy of release r2" in said


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


def test_production_takes_only_its_runs_release_scanned_sealed_and_never_steps_back(
    world: World,
) -> None:
    w = world
    with w.standin("staging") as stg, w.standin("production") as prd:
        # Given release N and release N+1 from two merges on main (builds 1 and 2)
        c_old, c_new = w.commit("merge N"), w.commit("merge N+1")
        w.builds[w.images[1]] = Build(c_old)
        w.builds[w.images[2]] = Build(c_new)
        w.release("rN", 1, 1, git_sha=c_old)
        w.release("rN1", 2, 2, git_sha=c_new)
        for rid in ("rN", "rN1"):
            w.ship(stg, "staging", rid)
            w.verify(rid)
        # And release N+1's production job already ran
        _ok(_deploy(w, "production", prd, "rN1"))
        running, revisions = w.service_td("production"), w.revisions("production")

        # When the production job of release N (its approval waited) runs now
        proc = _deploy(w, "production", prd, "rN")
        # Then it ends "superseded" (exit 17) and deploys nothing
        err = " ".join(proc.stderr.split())
        assert proc.returncode == 17, err
        assert "release rN" in err
        assert "is superseded: production already runs release rN1" in err
        assert (w.service_td("production"), w.revisions("production")) == (running, revisions)
        assert w.alias("production") == 2
        meta = prd.metadata()
        assert (meta["deployment"]["git_commit"], meta["model"]["version"]) == (c_new, "2")
        # And --newest is refused for production: a job deploys its run's release
        proc = _deploy(w, "production", prd, "rN", "--newest")
        assert proc.returncode == 2
        assert "--newest is refused for production" in " ".join(proc.stderr.split())

        # And the production job records who approved its run (GitHub's run approvals API: the
        # recorded response, served locally), shown in the release's history
        with _github_approvals() as api:
            proc = w.mlops(
                w.env("production", prd.url, GITHUB_RUN_ID="4242", GITHUB_TOKEN="t",
                      GITHUB_REPOSITORY="lender/credit-risk", GITHUB_API_URL=api),
                "release", "approvals", "--release", "rN1",
            )  # fmt: skip
        assert "approved by model-risk-approver for production" in _ok(proc)
        assert json.loads(w.tags()["release.rN1"])["approvals"][0]["run_id"] == "4242"

        # When production is asked for a release without a scan record, or one whose scan
        # (recorded trivy result) has a HIGH finding with a fix
        w.release("r-noscan", 2, 2, report=None, git_sha=c_new)
        w.release("r-high", 2, 2, report="report_high.json", git_sha=c_new)
        for rid, says in (
            ("r-noscan", "release r-noscan has no scan record; production refuses"),
            ("r-high", "found HIGH/CRITICAL vulnerabilities with a fix"),
        ):
            proc = _deploy(w, "production", prd, rid, "--allow-skip-staging")
            err = " ".join(proc.stderr.split())
            # Then it is refused (exit 14), naming why, and nothing moves
            assert proc.returncode == 14, err
            assert says in err, err
        assert "CVE-2024-0003 urllib3@2.2.1 (HIGH, fixed in 2.2.2)" in err
        assert (w.service_td("production"), w.revisions("production")) == (running, revisions)

        # When the production job's digest (its run's job output) is not the record's
        proc = _deploy(w, "production", prd, "rN1", "--digest", "sha256:" + "0" * 64)
        # Then it is refused
        assert proc.returncode == 14
        assert "but the run that created it recorded sha256:0000" in " ".join(proc.stderr.split())

        # When someone with EDIT on the model rewrites a release record (another image)
        forged = json.loads(w.tags()["release.r-noscan"])
        forged["serve_image"] = w.images[1]
        w.registry().set_model_tag(w.model, "release.r-noscan", json.dumps(forged))
        # Then `release audit` flags it, and production refuses to deploy until a human looks
        proc = w.mlops(w.env("staging", stg.url), "release", "audit")
        assert proc.returncode == 14
        assert "release r-noscan: the record does not hash to its digest" in proc.stderr
        proc = _deploy(w, "production", prd, "rN1")
        assert proc.returncode == 14
        assert "failed the integrity check" in " ".join(proc.stderr.split())
        assert (w.service_td("production"), w.revisions("production")) == (running, revisions)


@contextlib.contextmanager
def _github_approvals() -> Any:
    """GitHub's run approvals endpoint for run 4242, answering the recorded response
    (tests/fixtures/github/run_approvals.json); GitHub cannot be reached from here."""
    body = (ROOT / "tests" / "fixtures" / "github" / "run_approvals.json").read_bytes()
    with canned({"/repos/lender/credit-risk/actions/runs/4242/approvals": (200, body)}) as base:
        yield base


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
        # When the break-glass runs (workflow_dispatch after one approval), sampled
        out_file = w.tmp / "github_output"
        with Sampler(prd.url) as sampler:
            started = time.monotonic()
            out = _ok(
                w.mlops(
                    w.env("production", prd.url, GITHUB_OUTPUT=str(out_file)),
                    "deploy", "--env", "production", "--previous-verified", "--reason",
                    "bad scores",
                )
            )  # fmt: skip
            finished = time.monotonic() - started
        # Then every sample was r2's or r1's pair, r1's from some point on (docs/performance.md
        # publishes these figures: pytest -s -k break_glass)
        assert set(sampler.pairs) <= {(SHA[1], "1"), (SHA[2], "2")}
        back = min(t for t, pair in sampler.timed if pair == (SHA[1], "1")) - started
        print(
            f"\nrollback (stand-ins): r1 served {back:.1f} s after the break-glass started; "
            f"verified (rollout, smoke, records) and exited after {finished:.1f} s"
        )
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
    from ml.adapters.ecs import ServiceRef
    from ml.deploy import release as releases
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
    from ml.deploy import rollout

    def observer(client: Any, ref: Any, td: str) -> Any:
        if td == good_td:
            return rollout.observe(client, ref, td)
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
        return rollout.classify(doc, td)

    return observer


def test_rollout_failures_are_reported_as_what_they_are_and_reverted(world: World) -> None:
    from ml.deploy import rollout
    from ml.deploy.rollout import Rollout
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
                return rollout.observe(client, ref, td)
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


# --- the model risk record of a deployed release --------------------------------------------


def test_the_model_risk_record_of_a_deployed_release_names_every_figure(world: World) -> None:
    import html

    import yaml

    from ml.settings import DEFAULT_DATA_SHA256, MLSettings
    from ml.train import train

    w = world
    # Given a version trained on the reviewed data (40 trees) with the repository's governance
    config = yaml.safe_load((ROOT / "config" / "train.yaml").read_text())
    config["candidates"]["xgboost"].update(n_estimators=40, learning_rate=0.25)
    (w.tmp / "train.yaml").write_text(yaml.safe_dump(config))
    settings = MLSettings(
        MLFLOW_TRACKING_URI=w.tracking, model_name=w.model, home=w.tmp / "home",
        train_config=w.tmp / "train.yaml", governance_config=ROOT / "config" / "governance.yaml",
    )  # fmt: skip
    with w.registry().fluent():
        version = train(settings, ["xgboost"]).version.version
    assert version == 3  # after the world's two tiny versions, in its registry
    with w.standin("staging") as stg, w.standin("production") as prd:
        # And production serving release r1 (v1), then r2 (that version) verified in staging
        # and deployed to production by CD after the approver's approval
        w.release("r1", 1, 1)
        w.ship(stg, "staging", "r1")
        w.verify("r1")
        w.ship(prd, "production", "r1")
        w.release("r2", 2, version)
        w.ship(stg, "staging", "r2")
        w.verify("r2")
        _ok(_deploy(w, "production", prd, "r2", GITHUB_ACTOR="model-approver-alice"))
        assert prd.metadata()["model"]["version"] == str(version)
    # When its model risk record is written
    record = w.tmp / "record.md"
    env = w.env(
        "production", prd.url, ML_DATA_SOURCE=str(ROOT / "data" / "uci_credit_card.csv.gz"),
        ML_DATA_SHA256=DEFAULT_DATA_SHA256, ML_TRAIN_CONFIG=str(w.tmp / "train.yaml"),
    )  # fmt: skip
    # (from the checkout, as CD runs it: the gates file names config/governance.yaml)
    out = _ok(
        subprocess.run(
            [str(MLOPS), "release", "report", "--release", "r2", "--output", str(record)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
    )  # fmt: skip
    assert "record.html" in out
    text, page = record.read_text(), (w.tmp / "record.html").read_text()
    from ml.promotions.records import records

    info = w.registry().get_version(w.model, version)
    assert info is not None
    applied = records(info, "production")[-1]
    # Then both name the release, the data version, the training config and the metrics
    for expected in (
        "Model risk record: release r2",
        f"{w.model} v{version}",
        DEFAULT_DATA_SHA256,
        "n_estimators",
        "roc_auc",
        # the gate results with their figures, fairness per group on the holdout
        "protected-inputs:SEX",
        "SEX=2 vs 1: approval",
        "2 (vs 1)",
        "<25 (vs 35-44)",
        # the canary against v1, the production version it replaced, and fairness on its replay
        "compare it with v1, the production version it replaced",
        "score_psi",
        f"Fairness on the canary replay: v{version} (production v1 beside)",
        # the reason texts logged with the version
        "As logged with the version.",
        "Payment status of the most recent month (September) shows a delay",
        # who approved (deployed) it, when, and the verification
        "model-approver-alice",
        applied["time"],
        "release verified",
    ):
        assert expected in text, expected
        assert html.escape(expected) in page, expected
    assert f"| data sha256 | {DEFAULT_DATA_SHA256} |" in text
    assert "| n_estimators | 40 |" in text
    assert "| roc_auc | 0." in text
    assert "| fairness:SEX | PASS |" in text
    assert "| SEX | 2 (vs 1) |" in text
    assert "| canary-fairness:SEX |" in text
    assert f"| production | promotion applied | model-approver-alice | {applied['time']} |" in text
    # And the HTML is one self-contained page: no script, nothing loaded from anywhere
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert f"<td>{DEFAULT_DATA_SHA256}</td>" in page
    assert "<td>model-approver-alice</td>" in page
