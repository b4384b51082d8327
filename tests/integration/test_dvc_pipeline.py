"""The DVC pipeline end to end: dvc.yaml's stages (`mlops` verbs), a moto S3 remote, MLflow.

One module fixture builds an "origin" repository from this checkout's pipeline files (dvc.yaml,
params.yaml, .dvc/config, the data), with a smaller xgboost (50 trees) so the module trains
three times in reasonable time: `dvc repro` there, `dvc push` to moto (server mode, as dvc-s3's
own tests do; the endpoint is in `.dvc/config.local` as a user of an S3-compatible store sets
it), the champion registered in a real MLflow store (SQLite) and `dvc.lock` committed. The tests
then work in that repository and in a fresh clone of it, with the real `dvc` of `.venv-dvc`.
Only `gh` is a stand-in (the GitHub CLI is the process boundary that cannot run here).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DVC_BIN = ROOT / ".venv-dvc" / "bin" / "dvc"
MLOPS = Path(sys.executable).parent / "mlops"
BUCKET = "dvc-remote-test"
REMOTE = f"s3://{BUCKET}/dvc"
FILES = (
    "dvc.yaml",
    "params.yaml",
    "config/train.yaml",
    "config/governance.yaml",  # training reads which columns the model may take
    "data/uci_credit_card.csv.gz",
    "data/PROVENANCE.md",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
    "promotions.yaml",
)
MODEL = "credit-risk"


@dataclass(frozen=True)
class World:
    """The origin repository, its bare copy, the environment every process gets."""

    origin: Path
    bare: Path
    env: dict[str, str]
    tmp: Path
    version: int
    run_id: str


def _run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def _dvc(world_env: dict[str, str], cwd: Path, *args: str) -> str:
    return _run([str(DVC_BIN), *args], cwd, world_env)


def _git(cwd: Path, *args: str) -> str:
    return _run(["git", *args], cwd, {**os.environ, **IDENTITY})


IDENTITY = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "test"), ("EMAIL", "test@example.invalid"))
}


def _remote_config(repo: Path, moto_url: str) -> None:
    """What a user of an S3-compatible store keeps out of git: the endpoint (and here, the
    test bucket)."""
    (repo / ".dvc" / "config.local").write_text(
        f"['remote \"platform\"']\n    url = {REMOTE}\n    endpointurl = {moto_url}\n"
    )


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", output)


def _objects(s3: object) -> set[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return {o["Key"] for o in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def world(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    assert DVC_BIN.is_file(), f"{DVC_BIN} missing: run `make dvc-install`"
    tmp = tmp_path_factory.mktemp("dvc")
    env = {
        **os.environ,
        **IDENTITY,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
        "ML_HOME": str(tmp / "mlops"),
        "ML_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "DVC_BIN": str(DVC_BIN),  # the clones have no .venv-dvc of their own
        "PATH": f"{MLOPS.parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("GITHUB_SHA", None)
    saved = dict(os.environ)
    os.environ.update(env)
    boto3.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    origin = tmp / "origin"
    for rel in FILES:
        (origin / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, origin / rel)
    config = yaml.safe_load((origin / "config/train.yaml").read_text())
    # The test's budget, not the model's: three trainings in the module.
    config["candidates"]["xgboost"].update(n_estimators=50, learning_rate=0.2)
    config["candidates"]["logreg"]["max_iter"] = 300
    (origin / "config/train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _git(origin, "init", "-q", "-b", "main")
    _git(origin, "add", "-A")
    _git(origin, "commit", "-qm", "pipeline")
    _remote_config(origin, moto_url)
    _run([str(MLOPS), "data", "repro"], origin, env)
    _run([str(MLOPS), "data", "push"], origin, env)
    out = _run([str(MLOPS), "data", "register", "--json"], origin, env)
    version = int(re.search(r"version (\d+)", out).group(1))  # type: ignore[union-attr]
    run_id = json.loads((origin / "build/pipeline/run.json").read_text())["run_id"]
    # the JSON line the Airflow task takes the version from (dags/credit_risk_training.py)
    assert json.loads(out.strip().splitlines()[-1]) == {
        "model": "credit-risk", "version": version, "run_id": run_id, "changed": True
    }  # fmt: skip
    _git(origin, "add", "dvc.lock", "reports")
    _git(origin, "commit", "-qm", "dvc.lock of the champion")
    bare = tmp / "origin.git"
    _git(tmp, "clone", "-q", "--bare", str(origin), str(bare))
    try:
        yield World(origin, bare, env, tmp, version, run_id)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _fresh_clone(world: World, name: str) -> Path:
    """A fresh clone of the origin: no DVC cache, no data, no outputs (no build/pipeline/)."""
    work = world.tmp / name
    _git(world.tmp, "clone", "-q", str(world.bare), str(work))
    _remote_config(work, world.env["AWS_ENDPOINT_URL"])
    return work


@pytest.fixture(scope="module")
def clone(world: World) -> Path:
    """A fresh clone the tests below share (and change, in order)."""
    return _fresh_clone(world, "clone")


def test_run_and_version_carry_the_lineage_and_the_dataset_input(world: World) -> None:
    # Given the champion the pipeline trained and `mlops data register` registered
    from ml.registry import Registry

    registry = Registry(world.env["ML_TRACKING_URI"])
    lock = yaml.safe_load((world.origin / "dvc.lock").read_text())
    md5 = lock["stages"]["ingest"]["outs"][0]["md5"]
    lock_sha = hashlib.sha256((world.origin / "dvc.lock").read_bytes()).hexdigest()
    head = _git(world.origin, "rev-parse", "HEAD~1").strip()  # the commit it trained at
    expected = {
        "dvc_data_md5": md5,
        "dvc_data_path": "build/pipeline/train.csv",
        "dvc_remote": REMOTE,
        "dvc_lock_sha256": lock_sha,
        "git_sha": head,
    }
    # Then the run and the version both record the data object, remote, lock and commit
    run = registry.client.get_run(world.run_id)
    version = registry.get_version(MODEL, world.version)
    assert version is not None
    for tags in (run.data.tags, version.tags):
        assert {k: tags.get(k) for k in expected} == expected
    # and the run's dataset input is the DVC object in the remote, digest = its md5
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.digest == md5
    assert json.loads(dataset.source)["uri"] == f"{REMOTE}/files/md5/{md5[:2]}/{md5[2:]}"
    assert [t.value for t in inputs[0].tags if t.key == "mlflow.data.context"] == ["training"]


def test_push_wipe_the_cache_pull_gives_the_provenance_bytes(world: World) -> None:
    # Given the pushed pipeline data, with the cache and the workspace copy wiped
    shutil.rmtree(world.origin / ".dvc" / "cache")
    staged = world.origin / "build/pipeline/train.csv"
    staged.unlink()
    # When it is pulled back from the remote
    _run([str(MLOPS), "data", "pull"], world.origin, world.env)
    # Then its sha256 is the one data/PROVENANCE.md promises
    provenance = (ROOT / "data/PROVENANCE.md").read_text()
    promised = re.search(r"\b[0-9a-f]{64}\b", provenance).group(0)  # type: ignore[union-attr]
    assert hashlib.sha256(staged.read_bytes()).hexdigest() == promised


def test_a_fresh_clone_reproduces_the_lock_and_the_champion(world: World, clone: Path) -> None:
    committed = (clone / "dvc.lock").read_bytes()
    # When a fresh clone pulls and reproduces: nothing is stale
    _dvc(world.env, clone, "pull")
    assert _ran(_dvc(world.env, clone, "repro")) == []
    # and every stage run again from scratch writes the same lock, byte for byte
    ran = _ran(_dvc(world.env, clone, "repro", "--force"))
    assert ran == ["ingest", "validate", "train", "evaluate"]
    assert (clone / "dvc.lock").read_bytes() == committed
    # and the champion's ROC-AUC within 1e-6 of the registered version's
    from ml.registry import Registry

    registry = Registry(world.env["ML_TRACKING_URI"])
    logged = registry.run_metrics(world.run_id)["roc_auc"]
    reproduced = json.loads((clone / "reports/metrics.json").read_text())["roc_auc"]
    assert abs(reproduced - logged) <= 1e-6
    # and a second repro runs nothing
    assert _ran(_dvc(world.env, clone, "repro")) == []


def test_an_unchanged_pipeline_registers_nothing_and_names_the_registered_version(
    world: World, tmp_path: Path
) -> None:
    # Given a scheduled retrain on a fresh checkout: data and params are the committed lock's
    checkout = _fresh_clone(world, "scheduled")
    outputs = tmp_path / "github_output"
    env = {**world.env, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(tmp_path / "s")}
    from ml.registry import Registry

    before = [v.version for v in Registry(world.env["ML_TRACKING_URI"]).versions(MODEL)]
    # When it runs the workflow's verbs: pull, repro (which runs nothing), push, register
    _run([str(MLOPS), "data", "pull"], checkout, env)
    assert _ran(_run([str(MLOPS), "data", "repro"], checkout, env)) == []
    _run([str(MLOPS), "data", "push"], checkout, env)
    assert not (checkout / "build/pipeline/run.json").exists()
    done = subprocess.run(
        [str(MLOPS), "data", "register", "--json"],
        cwd=checkout, env=env, capture_output=True, text=True,
    )  # fmt: skip
    # Then it ends cleanly, saying which data is already which version
    message = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 0, message
    md5 = yaml.safe_load((checkout / "dvc.lock").read_text())["stages"]["ingest"]["outs"][0]["md5"]
    assert f"Nothing changed: data build/pipeline/train.csv (DVC md5 {md5})" in message
    assert f"already registered as {MODEL} version {world.version}" in message
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "model": MODEL, "version": world.version, "run_id": world.run_id, "changed": False
    }  # fmt: skip
    # and nothing is registered, and the workflow gets no version (so no report and no PR)
    after = [v.version for v in Registry(world.env["ML_TRACKING_URI"]).versions(MODEL)]
    assert after == before
    assert outputs.read_text().split() == ["changed=false"]


def test_a_config_change_training_reads_makes_the_lock_stale(world: World) -> None:
    # Given a checkout whose lock is current (no data pulled: missing data is not staleness)
    checkout = _fresh_clone(world, "governance-change")
    _run([str(MLOPS), "data", "status"], checkout, world.env)
    # When a file the train stage reads but does not take params from changes
    governance = checkout / "config/governance.yaml"
    governance.write_text(governance.read_text().replace("top: 4", "top: 3"))
    assert governance.read_text() != (world.origin / "config/governance.yaml").read_text()
    done = subprocess.run(
        [str(MLOPS), "data", "status"], cwd=checkout, env=world.env, capture_output=True, text=True
    )
    # Then PR CI's check fails naming the train stage and the file, not the stages before it
    message = done.stdout + done.stderr
    assert done.returncode == 3, message
    assert "stage train: config/governance.yaml modified" in message
    assert "stage ingest" not in message
    assert "stage validate" not in message


def test_a_stale_lock_fails_the_check_and_a_params_change_reruns_only_its_stages(
    world: World, clone: Path
) -> None:
    # Given a parameter change in config/train.yaml without a new lock
    config = yaml.safe_load((clone / "config/train.yaml").read_text())
    config["candidates"]["logreg"]["C"] = 0.25
    (clone / "config/train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Then PR CI's check fails, naming the stage and the parameter
    done = subprocess.run(
        [str(MLOPS), "data", "status"], cwd=clone, env=world.env, capture_output=True, text=True
    )
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout + done.stderr
    assert "stage train" in message
    assert "candidates" in message
    assert "dvc repro" in message
    assert "stage ingest" not in message
    assert "Traceback" not in message
    # When the pipeline is reproduced, only the stages that read the parameter run
    assert _ran(_run([str(MLOPS), "data", "repro"], clone, world.env)) == ["train", "evaluate"]
    _run([str(MLOPS), "data", "status"], clone, world.env)
    # and the PR's plan comment shows the parameter and metrics against the base branch
    diff = _run([str(MLOPS), "data", "diff", "--base", "origin/main"], clone, world.env)
    assert "candidates.logreg.C" in diff
    assert "reports/train_metrics.json" in diff


def test_the_promotion_pr_commits_the_new_lock(
    world: World, clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the clone after a reproduction (a new dvc.lock and reports, after the params change
    # an earlier test of this module made) and a stand-in gh
    assert _git(clone, "status", "--porcelain", "dvc.lock").strip()
    lock = (clone / "dvc.lock").read_text()  # pr open commits it on the branch, then switches back
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text("#!/bin/sh\necho https://github.example/pull/7\n")
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    env = {**world.env, "PATH": f"{bin_dir}{os.pathsep}{world.env['PATH']}"}
    # When the retrain's PR verb runs with the pipeline's files
    out = _run(
        [str(MLOPS), "pr", "open", "--version", str(world.version), "--include", "dvc.lock",
         "--include", "reports", "--include", "config/train.yaml"],
        clone,
        env,
    )  # fmt: skip
    assert "https://github.example/pull/7" in out
    # Then the pushed branch holds promotions.yaml and the new lock and reports, nothing else
    branch = f"promote/{MODEL}-v{world.version}"
    files = _git(world.bare, "show", "--name-only", "--format=", branch).split()
    assert "dvc.lock" in files
    assert "promotions.yaml" in files
    assert "reports/train_metrics.json" in files
    assert _git(world.bare, "show", f"{branch}:dvc.lock") == lock
    # and `mlops history` shows the data version next to the promotion
    md5 = yaml.safe_load(lock)["stages"]["ingest"]["outs"][0]["md5"]
    history = _run([str(MLOPS), "history", MODEL], clone, env)
    assert f"| data md5 {md5[:12]} build/pipeline/train.csv" in " ".join(history.split())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.rename(columns={"LIMIT_BAL": "CREDIT_LIMIT"}), "LIMIT_BAL"),
        (lambda f: f.assign(AGE=f["AGE"].where(f.index % 7 != 0, 250)), "AGE"),
    ],
    ids=["wrong-column", "out-of-contract-values"],
)
def test_bad_new_data_is_refused_and_nothing_is_pushed(
    world: World, clone: Path, tmp_path: Path, change: object, named: str
) -> None:
    # Given a new monthly file that breaks the contract
    frame = pd.read_csv(ROOT / "data/uci_credit_card.csv.gz").head(5000)
    bad = tmp_path / "2026-11.csv"
    change(frame).to_csv(bad, index=False)  # type: ignore[operator]
    s3 = boto3.client("s3")
    before, head = _objects(s3), _git(clone, "rev-parse", "HEAD")
    params = (clone / "params.yaml").read_text()
    # When it is added
    done = subprocess.run(
        [str(MLOPS), "data", "add", str(bad)],
        cwd=clone,
        env=world.env,
        capture_output=True,
        text=True,
    )
    # Then it is refused, naming the problem; nothing is copied, tracked, pushed or committed
    message = done.stdout + done.stderr
    assert done.returncode == 3, message
    assert named in message
    assert "Traceback" not in message
    assert not (clone / "data/2026-11.csv").exists()
    assert not (clone / "data/2026-11.csv.dvc").exists()
    assert (clone / "params.yaml").read_text() == params
    assert _objects(s3) == before
    assert _git(clone, "rev-parse", "HEAD") == head


def test_good_new_data_is_added_pushed_and_committed(world: World, clone: Path) -> None:
    # Given a new file within the contract
    frame = pd.read_csv(ROOT / "data/uci_credit_card.csv.gz").tail(5000)
    new = world.tmp / "2026-12.csv"
    frame.to_csv(new, index=False)
    # When it is added
    _run([str(MLOPS), "data", "add", str(new)], clone, world.env)
    # Then it is tracked, its object is in the remote, and the commit points the pipeline at it
    pointer = yaml.safe_load((clone / "data/2026-12.csv.dvc").read_text())
    md5 = pointer["outs"][0]["md5"]
    assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in _objects(boto3.client("s3"))
    params = yaml.safe_load((clone / "params.yaml").read_text())
    assert params["data"]["path"] == "data/2026-12.csv"
    committed = _git(clone, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == ["data/.gitignore", "data/2026-12.csv.dvc", "params.yaml"]
    # and the lock is now stale at the first stage, which the PR's CI reports
    done = subprocess.run(
        [str(MLOPS), "data", "status"], cwd=clone, env=world.env, capture_output=True, text=True
    )
    assert done.returncode == 3
    assert "stage ingest" in done.stdout + done.stderr


def test_the_data_in_remote_gate_refuses_a_version_whose_data_is_lost(world: World) -> None:
    from ml.promotions.gates import ModelGates
    from ml.promotions.gates.verdicts import check_version
    from ml.registry import Registry

    registry = Registry(world.env["ML_TRACKING_URI"])
    state = registry.model_state(MODEL)
    version = registry.get_version(MODEL, world.version)
    assert version is not None
    md5 = version.tags["dvc_data_md5"]
    # Given the gate passes while the object is in the remote
    verdict = check_version(registry, state, MODEL, world.version, ModelGates(), rollback=False)
    gate = [r for r in verdict.results if r.gate == "data_in_remote"]
    assert [r.passed for r in gate] == [True]
    # When the object is deleted from the remote
    key = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    boto3.client("s3").delete_object(Bucket=BUCKET, Key=key)
    # Then the version cannot be promoted, and the failure names it and the missing object
    verdict = check_version(registry, state, MODEL, world.version, ModelGates(), rollback=False)
    assert not verdict.passed
    (failure,) = [r for r in verdict.failures if r.gate == "data_in_remote"]
    assert f"{MODEL} v{world.version}" in failure.detail
    assert f"s3://{BUCKET}/{key}" in failure.detail
