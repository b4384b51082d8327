"""The Airflow DAGs, run by Airflow 3 from its own environment (`make airflow-install`).

- The DAG bag imports with zero errors; the task graphs, retries, timeouts, schedules and
  callbacks of both DAGs are what the docs say; the docker runner swaps the operators only.
- `airflow dags test` (in-process, SQLite metadata DB in a temporary AIRFLOW_HOME) runs the
  training DAG end to end against a real embedded MLflow store (ML_HOME in tmp) and a real git
  remote (a bare repository in tmp): version 1 is registered, the promotion branch with the
  edited promotions.yaml is on the remote, no alias moved, and the success notification reaches
  a local webhook receiver.
- Bad data injected at ingest (a shifted sample with its correct checksum) fails the data gate:
  nothing is trained or registered, and the failure notification reaches the receiver.
- The monitoring DAG under `dags test` with unreadable logs: one attempt of each task (a data
  error is final; fairness runs after drift whatever drift found), and `drift.failed` and
  `fairness.failed` reach the receiver.

`gh` is the one stand-in: GitHub cannot be reached here, so a script on PATH records its arguments
and prints a PR URL (the push it follows is real). The deadline alert is switched off for the
`dags test` runs (CREDIT_RISK_DEADLINE_HOURS=0): Airflow 3.3.2's `dags test` exits 1 after a
successful run of a DAG with a deadline (apache/airflow#73428); the graph test checks it is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.fixtures.datasets import shift, write_csv
from tests.fixtures.receiver import Receiver, webhook_receiver

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = ROOT / ".venv-airflow" / "bin"
MLOPS = ROOT / ".venv" / "bin" / "mlops"
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
# Small and fast, yet above the floors of config/gates.yaml (ROC-AUC 0.75, KS 0.30, Brier 0.16).
TRAIN_CONFIG = """\
seed: 42
test_size: 0.2
candidates:
  xgboost: {n_estimators: 60, learning_rate: 0.2, max_depth: 4, min_child_weight: 20,
            subsample: 0.8, colsample_bytree: 0.5, reg_lambda: 10.0}
  logreg: {C: 0.5, max_iter: 200}
"""
SAMPLE_ROWS = 8000

GRAPH_SCRIPT = """
import json, os, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
bags = []
for scenario in json.loads(sys.argv[2]):  # the DAG files read the environment when parsed
    os.environ.update(scenario)
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
    out = {"errors": {str(k): v.strip().splitlines()[-1] for k, v in bag.import_errors.items()},
           "dags": {}}
    for dag_id, dag in bag.dags.items():
        out["dags"][dag_id] = {
            "schedule": getattr(dag.timetable, "expression", None) or repr(dag.timetable),
            "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
            "dagrun_timeout": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            "deadline": [a.interval.total_seconds() for a in (dag.deadline or [])],
            "params": sorted(dag.params),
            "tasks": {t.task_id: {
                "type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                "retries": t.retries, "timeout": t.execution_timeout.total_seconds(),
                "on_failure": len(t.on_failure_callback or []),
                "on_success": len(t.on_success_callback or []), "pool": t.pool,
                "trigger": getattr(t.trigger_rule, "value", t.trigger_rule),
            } for t in dag.tasks},
        }
        if "data_source" in dag.task_dict:  # the branch's choice for each kind of trigger
            choose = dag.task_dict["data_source"].python_callable
            out["dags"][dag_id]["branch"] = [choose({**dag.params.dump(), **conf})
                                             for conf in json.loads(sys.argv[3])]
    bags.append(out)
print(json.dumps(bags))
"""


def _airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        CREDIT_RISK_PROJECT_DIR=str(ROOT),
        CREDIT_RISK_MLOPS=str(MLOPS),
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    if not (AIRFLOW_BIN / "airflow").exists():
        pytest.fail("no Airflow environment: run `make airflow-install` (make test does)")
    return AIRFLOW_BIN


SCENARIOS = {
    "default": {},
    "docker": {"CREDIT_RISK_RUNNER": "docker"},
    "bad runner": {"CREDIT_RISK_RUNNER": "kubernetes"},
}


@pytest.fixture(scope="module")
def bags(airflow_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The DAG bag parsed under each scenario's environment, in one Airflow process."""
    done = subprocess.run(
        [str(airflow_bin / "python"), "-c", GRAPH_SCRIPT, str(ROOT / "dags"),
         json.dumps(list(SCENARIOS.values())), json.dumps(BRANCH_CONFS)],
        env=_airflow_env(tmp_path_factory.mktemp("airflow-bag")),
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return dict(zip(SCENARIOS, json.loads(done.stdout.strip().splitlines()[-1]), strict=True))


# Triggers and the first task of the path each takes: only the untouched defaults (the
# scheduled run) take the DVC pipeline; any ad-hoc input takes the ad-hoc path.
BRANCH_CONFS = [{}, {"data": "s3://b/new.csv"}, {"model": "xgboost"},
                {"train_params": {"xgboost": {"max_depth": 4}}}]  # fmt: skip
BRANCHES = ["dvc_pull", "ingest", "ingest", "ingest"]
DVC_POOL = "credit_risk_dvc"
DVC_TASKS = {
    "dvc_pull": ["data_source"],
    "dvc_repro": ["dvc_pull"],
    "dvc_push": ["dvc_repro"],
    "dvc_register": ["dvc_push"],
    "new_version": ["dvc_register"],  # skips the PR when the register registered nothing
    "open_pipeline_pr": ["dvc_register", "new_version"],
}
ADHOC_TASKS = {
    "ingest": ["data_source"],
    "data_check": ["ingest"],
    "train": ["data_check", "ingest"],
    "evaluate": ["train"],
    "performance_gate": ["evaluate", "train"],
    "register": ["performance_gate", "train"],
    "open_pr": ["register"],
}
TRAINING = {"data_source": [], **ADHOC_TASKS, **DVC_TASKS}


def test_the_dag_bag_imports_and_the_graphs_are_as_documented(bags: dict[str, dict]) -> None:
    bag = bags["default"]
    assert bag["errors"] == {}
    assert set(bag["dags"]) == {
        "credit_risk_training",
        "credit_risk_monitoring",
        "credit_risk_scoring",
    }

    training = bag["dags"]["credit_risk_training"]
    assert training["schedule"] == "0 3 * * 1"  # weekly; manual triggers any time
    assert (training["catchup"], training["max_active_runs"]) == (False, 1)
    assert training["dagrun_timeout"] == 4 * 3600
    assert training["deadline"] == [3 * 3600]
    assert training["params"] == ["data", "data_sha256", "model", "train_params"]
    tasks = training["tasks"]
    assert {t: v["upstream"] for t, v in tasks.items()} == TRAINING
    assert tasks.pop("data_source")["type"] == "BranchPythonOperator"
    assert training["branch"] == BRANCHES
    assert tasks.pop("new_version")["type"] == "ShortCircuitOperator"
    assert {v["type"] for v in tasks.values()} == {"MlopsOperator"}
    assert all(v["retries"] == 2 and v["on_failure"] == 1 for v in tasks.values())
    assert tasks["train"]["timeout"] == 2 * 3600
    assert tasks["dvc_repro"]["timeout"] == 2 * 3600
    assert tasks["evaluate"]["timeout"] == 20 * 60
    assert [t for t, v in tasks.items() if v["on_success"]] == ["open_pr", "open_pipeline_pr"]
    # DVC locks its repository: every DVC task, and only those, holds the one-slot pool
    assert [t for t, v in tasks.items() if v["pool"] == DVC_POOL] == list(DVC_TASKS)[:4]

    monitoring = bag["dags"]["credit_risk_monitoring"]
    assert monitoring["schedule"] == "0 * * * *"
    assert monitoring["dagrun_timeout"] == 55 * 60
    assert monitoring["tasks"] == {
        "drift": {
            "type": "MlopsOperator", "upstream": [], "retries": 1, "timeout": 30 * 60,
            "on_failure": 1, "on_success": 0, "pool": "default_pool", "trigger": "all_success",
        },
        # after drift, whatever drift found: a drift breach says nothing about fairness
        "fairness": {
            "type": "MlopsOperator", "upstream": ["drift"], "retries": 1, "timeout": 30 * 60,
            "on_failure": 1, "on_success": 0, "pool": "default_pool", "trigger": "all_done",
        },
    }  # fmt: skip

    scoring = bag["dags"]["credit_risk_scoring"]
    assert scoring["schedule"] == "0 1 * * *"
    assert scoring["tasks"] == {
        "score_book": {
            "type": "MlopsOperator", "upstream": [], "retries": 1, "timeout": 4 * 3600,
            "on_failure": 1, "on_success": 0, "pool": "default_pool", "trigger": "all_success",
        }
    }  # fmt: skip


def test_the_docker_runner_changes_the_operators_not_the_graph(bags: dict[str, dict]) -> None:
    bag = bags["docker"]
    assert bag["errors"] == {}
    tasks = bag["dags"]["credit_risk_training"]["tasks"]
    assert {t: v["upstream"] for t, v in tasks.items()} == TRAINING
    types = {t: v["type"] for t, v in tasks.items() if t in ADHOC_TASKS}
    # the promotion PR needs git and gh, which the train image does not carry
    assert types.pop("open_pr") == "MlopsOperator"
    assert set(types.values()) == {"MlopsDockerOperator"}
    # and the DVC pipeline runs in the git checkout with its own DVC environment
    assert {tasks[t]["type"] for t in DVC_TASKS if t != "new_version"} == {"MlopsOperator"}


def test_a_bad_runner_is_an_import_error_naming_the_variable(bags: dict[str, dict]) -> None:
    bag = bags["bad runner"]
    assert bag["dags"] == {}
    assert set(bag["errors"]) == {
        "credit_risk_training.py", "credit_risk_monitoring.py", "credit_risk_scoring.py"
    }  # fmt: skip
    assert all("CREDIT_RISK_RUNNER='kubernetes'" in e for e in bag["errors"].values())


# --- `airflow dags test` end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated_db(airflow_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow metadata DB migrated once; each run starts from a copy."""
    home = tmp_path_factory.mktemp("airflow-template")
    for command in (["db", "migrate"], ["pools", "set", DVC_POOL, "1", "DVC repository lock"]):
        subprocess.run(
            [str(airflow_bin / "airflow"), *command],
            env=_airflow_env(home),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    return home / "airflow.db"


@dataclass
class Stage:
    """A temporary world for one DAG run: Airflow home, MLflow store, git remote, gh, receiver."""

    root: Path
    env: dict[str, str]
    origin: Path
    gh_log: Path
    store: str
    receiver: Receiver


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def stage(tmp_path: Path, migrated_db: Path) -> Iterator[Stage]:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(migrated_db, home / "airflow.db")
    # The repository's remote: a bare repository holding promotions.yaml on main.
    origin, seed = tmp_path / "origin.git", tmp_path / "seed"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", "-q", str(origin), str(seed))
    shutil.copy(ROOT / "promotions.yaml", seed / "promotions.yaml")
    _git(seed, "add", "promotions.yaml")
    _git(seed, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "promotions")
    _git(seed, "push", "-q", "origin", "HEAD:main")
    # Stand-in gh (GitHub is not reachable): records its arguments, prints a PR URL.
    bin_dir, gh_log = tmp_path / "bin", tmp_path / "gh.log"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {gh_log}\necho https://github.com/o/r/pull/7\n'
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "train.yaml").write_text(TRAIN_CONFIG)
    ml_home = tmp_path / "mlops"
    with webhook_receiver() as receiver:
        env = _airflow_env(
            home,
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            ML_HOME=str(ml_home),
            ML_TRAIN_CONFIG=str(tmp_path / "train.yaml"),
            CREDIT_RISK_WORK_DIR=str(tmp_path / "work"),
            CREDIT_RISK_GIT_REMOTE=str(origin),
            CREDIT_RISK_DATA_REFERENCE=str(DATA),
            CREDIT_RISK_DEADLINE_HOURS="0",  # apache/airflow#73428, see the module docstring
            NOTIFY_WEBHOOK_URL=receiver.url,
            NOTIFY_ATTEMPTS="2",
        )
        yield Stage(tmp_path, env, origin, gh_log, f"sqlite:///{ml_home / 'mlflow.db'}", receiver)


def _dags_test(stage: Stage, conf: dict) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "dags", "test", "credit_risk_training",
         "--conf", json.dumps(conf)],
        env=stage.env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    (stage.root / "dags-test.log").write_text(done.stdout + done.stderr)
    return done


def _task_states(stage: Stage) -> dict[str, str]:
    con = sqlite3.connect(stage.env["AIRFLOW_HOME"] + "/airflow.db")
    try:
        rows = con.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'credit_risk_training'"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def _versions(store: str) -> list:
    if not Path(store.removeprefix("sqlite:///")).exists():
        return []
    return MlflowClient(store, registry_uri=store).search_model_versions("name = 'credit-risk'")


def test_dags_test_registers_a_version_and_pushes_the_promotion_branch(stage: Stage) -> None:
    # Given a sample of the project's data with its checksum, an empty registry, a git remote
    frame = pd.read_csv(DATA).sample(SAMPLE_ROWS, random_state=7)
    data = stage.root / "sample.csv.gz"
    sha = write_csv(data, frame)

    # When the training DAG runs end to end
    done = _dags_test(stage, {"data": str(data), "data_sha256": sha, "model": "xgboost"})

    # Then every task succeeded
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # the ad-hoc path ran (data was given); the DVC pipeline's tasks were skipped
    assert _task_states(stage) == {
        "data_source": "success",
        **dict.fromkeys(ADHOC_TASKS, "success"),
        **dict.fromkeys(DVC_TASKS, "skipped"),
    }
    # version 1 is registered from the champion run, trained on exactly that data
    versions = _versions(stage.store)
    assert [int(v.version) for v in versions] == [1]
    assert versions[0].tags["data_sha256"] == sha
    # nothing was promoted: no alias, no stage
    client = MlflowClient(stage.store, registry_uri=stage.store)
    assert client.get_registered_model("credit-risk").aliases == {}
    assert versions[0].current_stage == "None"
    # the promotion branch with promotions.yaml at v1 is on the remote; main is unchanged
    pushed = _git(stage.origin, "show", "promote/credit-risk-v1:promotions.yaml")
    assert "version: 1" in pushed
    assert "retrain v1" in pushed
    assert _git(stage.origin, "show", "main:promotions.yaml") == (
        ROOT / "promotions.yaml"
    ).read_text().rstrip("\n")
    assert "pr create --head promote/credit-risk-v1" in stage.gh_log.read_text()
    # and the success notification names the version and the PR
    sent = stage.receiver.wait_for(lambda b: "Retrain registered" in b["text"], timeout=5)
    assert sent is not None, stage.receiver.received
    body = json.dumps(sent)
    assert "https://github.com/o/r/pull/7" in body
    assert "credit-risk v1" in sent["text"]


def test_bad_data_at_ingest_fails_the_data_gate_and_registers_nothing(stage: Stage) -> None:
    # Given a shifted sample (six features moved) with its correct checksum: ingest accepts it
    frame = shift(pd.read_csv(DATA).sample(SAMPLE_ROWS, random_state=7))
    data = stage.root / "shifted.csv.gz"
    sha = write_csv(data, frame)

    # When the training DAG runs
    done = _dags_test(stage, {"data": str(data), "data_sha256": sha, "model": "xgboost"})

    # Then the run failed at the data gate, without retrying it, and nothing after it ran
    assert done.returncode != 0
    states = _task_states(stage)
    assert {t: states.pop(t) for t in DVC_TASKS} == dict.fromkeys(DVC_TASKS, "skipped")
    assert states.pop("data_source") == "success"
    assert states.pop("ingest") == "success"
    assert states.pop("data_check") == "failed"
    assert set(states.values()) == {"upstream_failed"}
    assert "mlops data check exited 15 (threshold crossed)" in done.stdout + done.stderr
    # no model was trained or registered, no branch pushed, no PR opened
    assert _versions(stage.store) == []
    assert _git(stage.origin, "branch", "--list", "promote/*") == ""
    assert not stage.gh_log.exists()
    # the failure notification reached the receiver, naming the task and the breach
    sent = stage.receiver.wait_for(lambda b: "Retrain failed" in b["text"], timeout=5)
    assert sent is not None, stage.receiver.received
    body = json.dumps(sent)
    assert "data_check" in body
    assert "data_check breach" in body
    assert len(stage.receiver.received) == 1  # one failure, one message


# What the DVC path's checkout holds: the pipeline with its committed lock and reports, its params
# and data, the promotions file.
PIPELINE_FILES = (
    "dvc.yaml", "dvc.lock", "params.yaml", "config/governance.yaml", "data/uci_credit_card.csv.gz",
    "reports/validation.json", "reports/train_metrics.json", "reports/metrics.json",
    "reports/plots/roc.csv", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore",
    "promotions.yaml",
)  # fmt: skip


def test_the_default_run_takes_the_dvc_pipeline_and_its_pr_carries_the_lock(
    stage: Stage,
) -> None:
    # Given a checkout of the repository (the worker's CREDIT_RISK_PROJECT_DIR) whose origin is
    # the stage's remote, a DVC remote in a local folder (DVC's local remote type) holding the
    # data dvc.lock names, and smaller training params than the committed lock's (so the run
    # retrains and the lock changes)
    checkout = stage.root / "checkout"
    for rel in PIPELINE_FILES:
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, checkout / rel)
    (checkout / "config" / "train.yaml").write_text(TRAIN_CONFIG)
    _git(checkout, "init", "-q", "-b", "main")
    _git(checkout, "add", "-A")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "pipeline")
    _git(checkout, "remote", "add", "origin", str(stage.origin))
    _git(checkout, "fetch", "-q", "origin")
    remote = stage.root / "dvc-remote"
    (checkout / ".dvc" / "config.local").write_text(
        f"['remote \"platform\"']\n    url = {remote}\n"
    )
    dvc = [str(ROOT / ".venv-dvc" / "bin" / "dvc")]
    path = f"{MLOPS.parent}{os.pathsep}{stage.env['PATH']}"  # the stages run `mlops`
    for step in (["repro", "ingest"], ["push"]):  # what an earlier run left in the remote
        done = subprocess.run(
            dvc + step, cwd=checkout, env={**stage.env, "PATH": path}, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(checkout / "build")
    shutil.rmtree(checkout / ".dvc" / "cache")
    stage.env.update(
        CREDIT_RISK_PROJECT_DIR=str(checkout),
        ML_TRAIN_CONFIG=str(checkout / "config" / "train.yaml"),
        DVC_BIN=str(ROOT / ".venv-dvc" / "bin" / "dvc"),
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@e",
    )  # fmt: skip

    # When the training DAG runs with the default parameters (as the weekly schedule does)
    done = _dags_test(stage, {})

    # Then the DVC path ran, one task after the other, and the ad-hoc tasks were skipped
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert _task_states(stage) == {
        "data_source": "success",
        **dict.fromkeys(ADHOC_TASKS, "skipped"),
        **dict.fromkeys(DVC_TASKS, "success"),
    }
    # dvc pull fetched the ingested data; the promotion branch carries the retrained lock
    branch = "promote/credit-risk-v1"
    lock = _git(stage.origin, "show", f"{branch}:dvc.lock") + "\n"
    assert lock != (ROOT / "dvc.lock").read_text()
    assert "n_estimators: 60" in lock  # the params of this checkout, not the committed ones
    assert (checkout / "build" / "pipeline" / "train.csv").is_file()
    # version 1 is registered with the lineage of the lock it was trained from
    versions = _versions(stage.store)
    assert [int(v.version) for v in versions] == [1]
    assert versions[0].tags["dvc_lock_sha256"] == hashlib.sha256(lock.encode()).hexdigest()
    # the promotion branch carries promotions.yaml at v1 and the reports too
    assert "version: 1" in _git(stage.origin, "show", f"{branch}:promotions.yaml")
    assert "reports/metrics.json" in _git(stage.origin, "ls-tree", "-r", "--name-only", branch)
    assert f"pr create --head {branch}" in stage.gh_log.read_text()
    sent = stage.receiver.wait_for(lambda b: "Retrain registered" in b["text"], timeout=5)
    assert sent is not None, stage.receiver.received


def test_the_drift_dag_reports_a_broken_job_once(stage: Stage) -> None:
    # Given prediction logs that cannot be read (the job is broken, not the model)
    stage.env["CREDIT_RISK_DRIFT_LOGS"] = str(stage.root / "no-such-logs")

    # When the monitoring DAG runs
    done = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "dags", "test", "credit_risk_monitoring"],
        env=stage.env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    # Then the drift task failed at once (a data error is final: no retry) and `drift.failed`
    # names the cause; a breach (exit 15) would have been notified by the verb instead
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "mlops monitor drift exited 3 (data)" in output
    # And the fairness task ran after it all the same (whatever drift found), failed the same
    # way, once, and `fairness.failed` names its cause
    assert "mlops monitor fairness exited 3 (data)" in output
    assert output.count("running in ") == 2  # one attempt each
    sent = stage.receiver.wait_for(lambda b: "Drift job failed" in b["text"], timeout=5)
    assert sent is not None, stage.receiver.received
    assert "no-such-logs" in json.dumps(sent)
    sent = stage.receiver.wait_for(lambda b: "Fairness job failed" in b["text"], timeout=5)
    assert sent is not None, stage.receiver.received
