"""Every CLI failure is bounded, one line and secret-free, and no command leaves a half-written
result: the `mlops` entry point run as a real process, per verb, against a real `mlflow server`.

Scenarios (one table per concern, each verb a row):
- registry down: a port with nothing listening, and a server stopped mid-run → exit 4 within
  the documented budget, one `error:` line naming the registry, no secret;
- planted credentials: a password in the tracking URI and in MLFLOW_TRACKING_PASSWORD (and the
  basic-auth user the server ignores) → absent from every byte printed or written;
- unwritable outputs (a read-only file system: /sys refuses even root) → exit 2 naming the path,
  no output file;
- SIGTERM mid-run → exit 143, no output, no staging folder, no scratch folder;
- a truncated gzip input → exit 3, one line naming the file and where it broke.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from devtools.services import MlflowServer, free_port, start_mlflow_server, stop_mlflow_server
from ml.contract import CONTRACT_FILE
from ml.features import CONTRACT
from tests.fixtures.prediction_logs import as_records, prediction_lines
from tests.integration.conftest_serve import feature_frame, log_tiny_version

ROOT = Path(__file__).resolve().parents[2]
MLOPS = str(Path(sys.executable).with_name("mlops"))
NAME = "credit-risk"
URI_SECRET = "Pl4nted-Uri-Secret-7781"
ENV_SECRET = "Pl4nted-Env-Secret-5523"
SECRETS = (URI_SECRET, ENV_SECRET)
# The CLI's budget against a refused connection is ~5 s per call (ml/waits.py, docs/cli.md);
# this bound leaves room for MLflow's import and a loaded 2-core machine, far below the
# minutes MLflow's own defaults take (7 retries with exponential backoff).
DOWN_BUDGET_S = 60


@dataclass(frozen=True)
class World:
    server: MlflowServer
    base: Path
    repo: Path  # a git repository holding promotions.yaml
    current_csv: Path
    logs: Path
    train_csv: Path
    train_sha: str
    big_input: Path

    def uri(self, port: int | None = None) -> str:
        """The server's URI with a password in it (the server ignores basic auth)."""
        real = port or int(self.server.uri.rsplit(":", 1)[1])
        return f"http://alice:{URI_SECRET}@127.0.0.1:{real}"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server holding credit-risk v1 (tiny booster, contract, reference sample) at
    @production, a repository whose promotions.yaml asks for it, and input files."""
    from mlflow import MlflowClient

    from ml.monitoring.reference import REFERENCE_DIR, REFERENCE_FILE, build_reference

    base = tmp_path_factory.mktemp("cli-failures")
    server = start_mlflow_server(f"sqlite:///{base / 'mlflow.db'}", base / "server")
    try:
        version = log_tiny_version(server.uri, NAME, seed=1, contract=CONTRACT)
        client = MlflowClient(server.uri, registry_uri=server.uri)
        client.set_registered_model_alias(NAME, "production", version)
        run_id = client.get_model_version(NAME, version).run_id
        reference = feature_frame(1500, 5)
        sample = build_reference(reference, np.random.default_rng(5).random(len(reference)))
        sample_path = base / REFERENCE_FILE
        sample.to_parquet(sample_path, index=False)
        client.log_artifact(run_id, str(sample_path), REFERENCE_DIR)
        assert client.list_artifacts(run_id, CONTRACT_FILE) is not None

        current = feature_frame(1200, 6)
        current.insert(0, "ID", np.arange(len(current)))
        current_csv = base / "current.csv"
        current.to_csv(current_csv, index=False)

        scores = np.random.default_rng(6).random(len(current))
        logs = base / "api.log"
        logs.write_text(prediction_lines(as_records(current), scores.tolist(), version=version))

        # The project's dataset (a subset can lack the float notation some columns need)
        train_csv = ROOT / "data" / "uci_credit_card.csv.gz"
        train_sha = hashlib.sha256(gzip.decompress(train_csv.read_bytes())).hexdigest()

        # Enough rows that scoring takes a while on this machine (SIGTERM lands mid-run).
        big = feature_frame(400_000, 7)
        big_input = base / "big.parquet"
        big.to_parquet(big_input, index=False)

        repo = base / "repo"
        shutil.copytree(ROOT / "config", repo / "config")  # train.yaml, gates, monitoring
        (repo / "promotions.yaml").write_text(
            f"models:\n  {NAME}:\n    version: {version}\n    note: cli failure tests\n"
        )
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "promotions.yaml")
        _git(
            repo,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            f"promote {NAME} v{version}",
        )
        yield World(server, base, repo, current_csv, logs, train_csv, train_sha, big_input)
    finally:
        stop_mlflow_server(server)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    seconds: float

    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    def stray(self) -> list[str]:
        """stderr lines other than the error and the wait progress lines."""
        return [
            line
            for line in self.err.splitlines()
            if line.strip() and not line.startswith(("error:", "waiting for "))
        ]


def _env(world: World, uri: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "ML_", "GITHUB_", "AWS_", "PYTEST_"))
    }
    env.update(
        ML_TRACKING_URI=uri,
        ML_HOME=str(world.base / "home"),
        MLFLOW_TRACKING_USERNAME="alice",
        MLFLOW_TRACKING_PASSWORD=ENV_SECRET,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        COLUMNS="200",
    )
    return env


def mlops(world: World, args: list[str], uri: str, timeout: float = 300) -> Outcome:
    started = time.monotonic()
    done = subprocess.run(
        [MLOPS, *args],
        cwd=world.repo,
        env=_env(world, uri),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


# --- the verbs --------------------------------------------------------------------------------

MONITORING = str(ROOT / "config" / "monitoring.yaml")
GATES = str(ROOT / "config" / "gates.yaml")


def _predict(w: World, out: Path) -> list[str]:
    return [
        "predict",
        "--model",
        f"{NAME}@production",
        "--input",
        str(w.current_csv),
        "--output",
        str(out / "scores.parquet"),
    ]


def _drift(w: World, out: Path) -> list[str]:
    return ["monitor", "drift", "--logs", str(w.logs), "--out", str(out), "--config", MONITORING]


def _data_check(w: World, out: Path) -> list[str]:
    reference = f"models:/{NAME}@production"
    return ["data", "check", "--current", str(w.current_csv), "--reference", reference]


def _train(w: World, out: Path) -> list[str]:
    return ["train", "--model", "logreg", "--data", str(w.train_csv), "--data-sha256", w.train_sha]


VERBS: dict[str, Callable[[World, Path], list[str]]] = {
    "promote status": lambda w, out: ["promote", "status"],
    "promote apply": lambda w, out: [
        "promote",
        "apply",
        "--env",
        "staging",
        "--gates",
        GATES,
        "--git-sha",
        "0" * 40,
        "--actor",
        "tests",
    ],
    "history": lambda w, out: ["history", NAME],
    "predict": _predict,
    "monitor drift": _drift,
    "data check": lambda w, out: [
        *_data_check(w, out),
        "--out",
        str(out),
        "--config",
        MONITORING,
    ],
    "train": _train,
}


def _no_secret(outcome: Outcome, *folders: Path) -> None:
    printed = outcome.out + outcome.err
    for secret in SECRETS:
        assert secret not in printed, f"{secret} printed:\n{printed[-3000:]}"
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in SECRETS:
                    assert secret.encode() not in data, f"{secret} written into {path}"


# --- registry down ----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", list(VERBS))
def test_a_registry_that_is_down_is_exit_4_in_bounded_time_one_line_no_secret(
    world: World, verb: str, tmp_path: Path
) -> None:
    # Given a tracking URI (with a password) pointing at a port where nothing listens
    dead = world.uri(free_port())

    # When the verb runs
    (tmp_path / "out").mkdir()
    outcome = mlops(world, VERBS[verb](world, tmp_path / "out"), dead)

    # Then it gives up within the budget, with one line naming the registry and the fix
    assert outcome.code == 4, (outcome.code, outcome.err[-2000:])
    assert outcome.seconds < DOWN_BUDGET_S, outcome.seconds
    [line] = outcome.errors()
    assert "MLflow registry at http://127.0.0.1:" in line, line
    assert "refused the connection" in line, line
    assert "check that" in line, line
    assert outcome.stray() == [], outcome.err
    _no_secret(outcome, tmp_path)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_server_stopped_mid_run_is_exit_4_naming_it(world: World, tmp_path: Path) -> None:
    # Given a second server on the same store, killed once predict has started (its outputs
    # are staged; importing MLflow takes it seconds more before its first call)
    second = start_mlflow_server(f"sqlite:///{world.base / 'mlflow.db'}", tmp_path / "second")
    port = int(second.uri.rsplit(":", 1)[1])
    out = tmp_path / "out"
    out.mkdir()
    try:
        proc = subprocess.Popen(
            [MLOPS, *_predict_to(world, out / "scores.parquet", None)],
            cwd=world.repo,
            env=_env(world, world.uri(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(lambda: any(out.glob(".mlops-staging-*")), proc)
        os.killpg(second.process.pid, signal.SIGKILL)
    finally:
        stop_mlflow_server(second)
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=300)
    outcome = Outcome(proc.returncode, stdout, stderr, time.monotonic() - started)

    # Then: exit 4 within the budget, one line naming the registry, nothing written, no secret
    assert outcome.code == 4, (outcome.code, stderr[-2000:])
    assert outcome.seconds < DOWN_BUDGET_S
    [line] = outcome.errors()
    assert f"MLflow registry at http://127.0.0.1:{port}" in line, line
    assert list(out.iterdir()) == []
    _no_secret(outcome, tmp_path)


def _wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen[str], limit: float = 120
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended first ({proc.returncode}): {proc.stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the process never reached the point to interrupt")
        time.sleep(0.05)


# --- planted credentials ----------------------------------------------------------------------

# What each verb ends with against the live server: the runs succeed where they can; promote
# apply refuses the tiny model at its gates and history has no recorded promotion yet.
EXPECTED_CODES = {
    "promote status": {0, 6},
    "promote apply": {0, 5},
    "history": {0},
    "predict": {0},
    "monitor drift": {0, 15},
    "data check": {0, 15},
    "train": {0},
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_a_planted_password_is_absent_from_every_byte_printed_or_written(
    world: World, verb: str, tmp_path: Path
) -> None:
    # Given the password in the tracking URI and in MLFLOW_TRACKING_PASSWORD
    out = tmp_path / "out"
    out.mkdir()

    # When the verb runs against the live server
    outcome = mlops(world, VERBS[verb](world, out), world.uri())

    # Then it did its work, and neither secret is in stdout, stderr or any file it wrote
    assert outcome.code in EXPECTED_CODES[verb], (outcome.code, outcome.err[-3000:])
    if verb == "train":
        assert "View run" in outcome.out + outcome.err, "MLflow's run link is the case to mask"
        assert "alice:***@" in outcome.out + outcome.err
    if verb in ("predict", "monitor drift", "data check"):
        assert any(out.iterdir()), "the verb wrote its outputs"
    _no_secret(outcome, tmp_path, world.base / "home")


# --- unwritable outputs -----------------------------------------------------------------------

READ_ONLY = Path("/sys")  # a read-only file system: refused even to root


def _predict_to(w: World, output: Path, rejects: Path | None) -> list[str]:
    args = ["predict", "--model", f"{NAME}@production", "--input", str(w.current_csv)]
    args += ["--output", str(output)]
    return [*args, "--rejects", str(rejects)] if rejects else args


UNWRITABLE: dict[str, Callable[[World, Path], tuple[list[str], Path]]] = {
    "predict output": lambda w, tmp: (
        _predict_to(w, READ_ONLY / "scores.parquet", None),
        READ_ONLY / "scores.parquet",
    ),
    "predict rejects": lambda w, tmp: (
        _predict_to(w, tmp / "scores.parquet", READ_ONLY / "rejects.parquet"),
        READ_ONLY / "rejects.parquet",
    ),
    "predict rejects folder missing": lambda w, tmp: (
        _predict_to(w, tmp / "scores.parquet", tmp / "missing" / "rejects.parquet"),
        tmp / "missing" / "rejects.parquet",
    ),
    "monitor drift": lambda w, tmp: (
        [*_drift(w, READ_ONLY / "drift")],
        READ_ONLY / "drift" / "drift-report.html",
    ),
    "data check": lambda w, tmp: (
        [*_data_check(w, tmp), "--out", str(READ_ONLY / "check"), "--config", MONITORING],
        READ_ONLY / "check" / "data-check-report.html",
    ),
}


@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_an_unwritable_output_is_exit_2_naming_it_and_nothing_is_left(
    world: World, case: str, tmp_path: Path
) -> None:
    args, named = UNWRITABLE[case](world, tmp_path)

    outcome = mlops(world, args, world.uri())

    assert outcome.code == 2, (outcome.code, outcome.err[-2000:])
    [line] = outcome.errors()
    assert str(named) in line, line
    assert outcome.stray() == [], outcome.err
    assert outcome.out == ""
    assert list(tmp_path.iterdir()) == [], "no output, temporary or folder is left"


# --- SIGTERM mid-run --------------------------------------------------------------------------

INTERRUPTED: dict[str, Callable[[World, Path], list[str]]] = {
    "predict": lambda w, out: [
        *_predict_to(w, out / "scores.parquet", None)[:3],
        "--input",
        str(w.big_input),
        "--output",
        str(out / "scores.parquet"),
    ],
    "monitor drift": _drift,
    "data check": lambda w, out: [
        *_data_check(w, out),
        "--out",
        str(out),
        "--config",
        MONITORING,
    ],
}


@pytest.mark.parametrize("verb", list(INTERRUPTED))
def test_sigterm_mid_run_leaves_no_partial_file_and_no_temporary_folder(
    world: World, verb: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    scratch = Path(tempfile.gettempdir())
    proc = subprocess.Popen(
        [MLOPS, *INTERRUPTED[verb](world, out)],
        cwd=world.repo,
        env=_env(world, world.uri()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # When SIGTERM arrives while the verb works: predict while it writes its scores, the
    # others while they read and compare (their staging folder exists)
    if verb == "predict":
        _wait_for(lambda: any(out.glob(".mlops-staging-*/*")), proc)
    else:
        _wait_for(lambda: any(out.glob(".mlops-staging-*")), proc)
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)

    # Then it stops with 143 and one line, leaving nothing in the output folder or in /tmp
    assert proc.returncode == 143, (proc.returncode, err[-2000:])
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted by SIGTERM: stopped before the end; no half-written output is left"
    ]
    assert list(out.iterdir()) == []
    assert not list(scratch.glob(f"mlops-predict-{proc.pid}-*"))


def test_a_staging_folder_left_by_sigkill_is_removed_by_the_next_run(
    world: World, tmp_path: Path
) -> None:
    # Given what SIGKILL leaves: the staging folder of a process that no longer exists
    stale = tmp_path / f".mlops-staging-{_ended_pid()}-abcd1234"
    stale.mkdir()
    (stale / "scores.parquet").write_bytes(b"half")

    outcome = mlops(world, _predict_to(world, tmp_path / "scores.parquet", None), world.uri())

    assert outcome.code == 0, outcome.err[-2000:]
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scores.parquet",
        "scores.rejects.parquet",
    ]


def _ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- truncated inputs -------------------------------------------------------------------------


def _truncated(source: Path, target: Path) -> Path:
    data = gzip.compress(source.read_bytes())
    target.write_bytes(data[: len(data) * 2 // 3])
    return target


TRUNCATED: dict[str, Callable[[World, Path], tuple[list[str], str]]] = {
    "predict": lambda w, tmp: (
        [
            *_predict_to(w, tmp / "scores.parquet", None)[:3],
            "--input",
            str(_truncated(w.current_csv, tmp / "in.csv.gz")),
            "--output",
            str(tmp / "scores.parquet"),
        ],
        "in.csv.gz",
    ),
    "monitor drift": lambda w, tmp: (
        [
            "monitor",
            "drift",
            "--logs",
            str(_truncated(w.logs, tmp / "api.log.gz")),
            "--out",
            str(tmp / "out"),
            "--config",
            MONITORING,
        ],
        "api.log.gz",
    ),
    "data check": lambda w, tmp: (
        [
            "data",
            "check",
            "--current",
            str(_truncated(w.current_csv, tmp / "cur.csv.gz")),
            "--reference",
            str(w.current_csv),
            "--out",
            str(tmp / "out"),
            "--config",
            MONITORING,
        ],
        "cur.csv.gz",
    ),
    "data ingest": lambda w, tmp: (
        [
            "data",
            "ingest",
            "--data",
            str(_truncated(w.current_csv, tmp / "train.csv.gz")),
            "--data-sha256",
            w.train_sha,
            "--out",
            str(tmp / "out"),
        ],
        "train.csv.gz",
    ),
}


@pytest.mark.parametrize("verb", list(TRUNCATED))
def test_a_truncated_gzip_is_exit_3_one_line_naming_the_file_and_where(
    world: World, verb: str, tmp_path: Path
) -> None:
    args, name = TRUNCATED[verb](world, tmp_path)

    outcome = mlops(world, args, world.uri())

    assert outcome.code == 3, (outcome.code, outcome.err[-2000:])
    [line] = outcome.errors()
    assert name in line, line
    assert re.search(r"byte [\d,]+", line), line
    assert "line" in line, line
    assert outcome.stray() == [], outcome.err
    assert "Aborted" not in outcome.err
    assert not (tmp_path / "scores.parquet").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_traceback_shows_the_traceback_of_a_truncated_input(world: World, tmp_path: Path) -> None:
    args, _ = TRUNCATED["data check"](world, tmp_path)

    outcome = mlops(world, ["--traceback", *args], world.uri())

    assert outcome.code != 0
    assert "Traceback (most recent call last)" in outcome.err
    assert "DataError" in outcome.err
