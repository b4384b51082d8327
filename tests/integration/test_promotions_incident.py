"""The incident paths, through the real CLI against a real `mlflow server` (SQLite backend):

- a hand-moved production alias: status names the re-sync, which works (integrity gates only,
  the canary not applicable) and is recorded as a repair in history;
- `rollback --to` a version production never ran: exit 8, nothing written;
- a plan for a version failing gates: non-zero in every format, the gates named;
- staging and production pinned apart;
- `mlops versions` (a golden file, dates masked);
- lanes: a staging deploy in flight and a dead staging holder block neither a production apply
  nor a break-glass rollback;
- leases: two default-owner applies in two real processes (one refused, exit 11), and a lease a
  failed run left is named by status and released by `promote unlock`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from ml.promotions.records import acquire_lease, begin_operation
from ml.registry import Registry
from tests.fixtures.models import GATES, GOOD_METRICS, register_tiny, write_spec
from tests.fixtures.services import MlflowServer

MLOPS = str(Path(sys.executable).with_name("mlops"))
GOLDEN = Path(__file__).with_name("golden") / "versions.txt"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def canary_gates(tmp_path: Path) -> Path:
    """The tests' gates plus a canary: a re-sync must show it as not applicable."""
    path = tmp_path / "gates.yaml"
    text = GATES.read_text().replace("defaults:\n", "defaults:\n  canary: {replay: holdout}\n", 1)
    path.write_text(text)
    return path


def _run(server: MlflowServer, gates: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """One CLI run; (exit code, stdout, stderr), each on one line per output line."""
    result = CliRunner().invoke(
        app,
        list(args),
        env={
            "MLFLOW_TRACKING_URI": server.uri,
            "ML_PROMOTE_LEASE_SETTLE": "0",
            "ML_PROMOTE_GATES_FILE": str(gates),
            "ML_PROMOTE_VERDICT_CACHE": "",
            **env,
        },
    )
    return result.exit_code, result.stdout, result.stderr


def _model(server: MlflowServer, versions: int, **metrics: float) -> str:
    name = f"i-{uuid.uuid4().hex[:8]}"
    for n in range(1, versions + 1):
        bad = {**GOOD_METRICS, **metrics} if metrics and n == versions else None
        register_tiny(server.uri, name, metrics=bad)
    return name


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository for promotions.yaml (history reads its log)."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Ada")
    _git(path, "config", "user.email", "ada@example.com")
    return path


def _commit(repo: Path, spec: Path, message: str) -> str:
    _git(repo, "add", spec.name)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _apply(server: MlflowServer, gates: Path, spec: Path, env: str, *extra: str) -> tuple:
    return _run(server, gates, "promote", "apply", "--env", env, "--file", str(spec), *extra)


def _aliases(server: MlflowServer, name: str) -> dict[str, int]:
    state = Registry(server.uri).model_state(name)
    assert state is not None
    return dict(state.aliases)


def test_a_hand_moved_production_alias_is_re_synced_by_the_command_status_names(
    mlflow_sqlite_server: MlflowServer, repo: Path, canary_gates: Path
) -> None:
    server, gates = mlflow_sqlite_server, canary_gates
    # Given v1 applied to both environments from git
    name = _model(server, 2)
    spec = write_spec(repo / "promotions.yaml", {name: 1})
    sha = _commit(repo, spec, "first (#1)")
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env, "--git-sha", sha)[0] == 0

    # When someone with registry access moves production to v2 by hand (an incident)
    MlflowClient(server.uri).set_registered_model_alias(name, "production", "2")

    # Then status exits 6 and names the command that repairs it
    code, out, err = _run(server, gates, "promote", "status", "--file", str(spec))
    assert code == 6, out + err
    named = re.search(r"fix: (mlops promote apply --env production --file \S+)", out)
    assert named is not None, out
    assert "re-sync to v1" in out
    # and the plan shows a re-sync with the canary not applicable (not judged against v2)
    code, out, err = _run(server, gates, "promote", "plan", "--file", str(spec))
    assert code == 0, out + err
    assert "production 2 → 1 (RE-SYNC)" in out
    assert re.search(r"RE-SYNC canary: not applicable: re-sync to v1", out), out

    # When the named command runs, as printed
    code, out, err = _run(server, gates, *shlex.split(named.group(1))[1:], "--git-sha", sha)

    # Then it exits 0, production is back on git's version, status is clean again
    assert code == 0, out + err
    assert "re-sync: recorded as a repair" in out
    assert _aliases(server, name)["production"] == 1
    assert _run(server, gates, "promote", "status", "--file", str(spec))[0] == 0
    # and history lists it as a repair of the change in force, not as a promotion
    code, out, err = _run(server, gates, "history", name, "--file", str(spec), "--json")
    assert code == 0, err
    events = json.loads(out)
    assert [e["to_version"] for e in events] == [1]
    (repair,) = events[0]["repairs"]
    assert (repair["environment"], repair["version"], repair["previous"]) == ("production", 1, 2)
    assert repair["resync"] is True
    code, out, _ = _run(server, gates, "history", name, "--file", str(spec))
    assert "REPAIR production: re-synced to v1" in out


def test_rollback_to_a_newer_version_never_in_production_writes_nothing(
    mlflow_sqlite_server: MlflowServer, repo: Path
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    # Given v1 in both environments and v3 registered but never applied anywhere
    name = _model(server, 3)
    spec = write_spec(repo / "promotions.yaml", {name: 1})
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env)[0] == 0
    before = spec.read_bytes()

    # When rolling back "to" v3
    code, out, err = _run(server, gates, "rollback", name, "--to", "3", "--file", str(spec))

    # Then exit 8 naming why, and promotions.yaml is byte for byte unchanged
    assert code == 8, out + err
    assert "v3 is not older than production's v1" in err
    assert spec.read_bytes() == before

    # And a hand-written `rollback: true` to v3 is refused by the plan too (exit 8)
    write_spec(spec, {name: 3}, rollback="true")
    code, out, err = _run(server, gates, "promote", "plan", "--file", str(spec))
    assert code == 8, out + err
    assert "never applied to production, and is newer than production's v1" in err


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_plan_for_a_version_failing_gates_exits_non_zero_naming_them(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path, fmt: str
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    # Given v1 in both environments and v2 below the roc_auc floor and worse than production
    name = _model(server, 2, roc_auc=0.70)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env)[0] == 0
    write_spec(spec, {name: 2})

    # When the plan is printed in any format (no --with-gates needed)
    code, out, err = _run(server, gates, "promote", "plan", "--file", str(spec), "--format", fmt)

    # Then it exits 5 and names the failing gates, in the output and in the error line
    assert code == 5, out + err
    for gate in ("floor:roc_auc", "regression:roc_auc"):
        assert gate in out
        assert gate in err
    assert f"gates failed: {name} v2 (staging, production)" in err

    # And --without-gates says first that it judged nothing
    code, out, err = _run(
        server, gates, "promote", "plan", "--file", str(spec), "--format", fmt, "--without-gates"
    )
    assert code == 0, out + err
    first = next(line for line in out.splitlines() if "Gates" in line or "gates_evaluated" in line)
    assert "NOT evaluated" in first or '"gates_evaluated": false' in first


def test_staging_and_production_pinned_apart(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    # Given v1 in both environments
    name = _model(server, 2)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env)[0] == 0

    # When git pins staging to v2 and production to v1
    spec.write_text(f"models:\n  {name}:\n    environments: {{staging: 2, production: 1}}\n")
    code, out, err = _run(server, gates, "promote", "plan", "--file", str(spec))
    assert code == 0, out + err
    assert "staging 1 → 2, production 1 (no change)" in out
    detailed = ("promote", "plan", "--file", str(spec), "--detailed-exitcode")
    assert _run(server, gates, *detailed)[0] == 20  # valid, with changes
    assert _apply(server, gates, spec, "staging")[0] == 0
    code, out, err = _apply(server, gates, spec, "production")

    # Then staging runs v2 and production stays on v1, both in sync with git
    assert code == 0, out + err
    assert _aliases(server, name) == {"staging": 2, "production": 1}
    code, out, err = _run(server, gates, "promote", "status", "--file", str(spec))
    assert code == 0, out + err
    assert out.count("in-sync") == 2
    assert _run(server, gates, *detailed)[0] == 0  # nothing to change

    # And `version: 2` then moves production, since staging has verified v2
    write_spec(spec, {name: 2})
    assert _apply(server, gates, spec, "production")[0] == 0
    assert _aliases(server, name) == {"staging": 2, "production": 2}


def test_versions_lists_aliases_metrics_data_and_who_applied_when(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    # Given three versions: v1 in both environments, then v2 applied to staging only
    name = _model(server, 3)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env, "--actor", "ada")[0] == 0
    write_spec(spec, {name: 2})
    assert _apply(server, gates, spec, "staging", "--actor", "bob")[0] == 0

    # When the versions are listed
    code, out, err = _run(server, gates, "versions", name)

    # Then the table matches the golden file (dates and the model's random name masked)
    assert code == 0, err
    masked = TIME.sub("<time>", out).replace(name, "<model>")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(masked)
    assert masked == GOLDEN.read_text()


def test_staging_in_flight_and_a_dead_staging_holder_block_neither_production_nor_break_glass(
    mlflow_sqlite_server: MlflowServer, repo: Path
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    registry = Registry(server.uri)
    # Given v1 in both environments and v2 verified in staging
    name = _model(server, 3)
    spec = write_spec(repo / "promotions.yaml", {name: 1})
    _commit(repo, spec, "first")
    for env in ("staging", "production"):
        assert _apply(server, gates, spec, env)[0] == 0
    write_spec(spec, {name: 2})
    _commit(repo, spec, "v2")
    assert _apply(server, gates, spec, "staging")[0] == 0
    # and a staging deploy of v3 in flight whose runner died: its pending record and its
    # staging lease (for an hour) are left behind
    acquire_lease(registry, name, "org/repo#run99", seconds=3600, settle=0, env="staging")
    begin_operation(registry, name, "staging", "deploy", version=3, previous=2,
                    git_sha="dead", actor="ci", release="r3")  # fmt: skip

    # When production is applied (another run, another owner)
    code, out, err = _apply(server, gates, spec, "production")

    # Then it goes through: production's precondition is the staging record of v2
    assert code == 0, out + err
    assert _aliases(server, name)["production"] == 2

    # And a break-glass rollback to v1 goes through as well
    code, out, err = _run(server, gates, "rollback", name, "--file", str(spec))
    assert code == 0, out + err
    code, out, err = _apply(server, gates, spec, "production")
    assert code == 0, out + err
    assert _aliases(server, name)["production"] == 1
    # while staging still reports its own interrupted deploy (exit 16) and its lease
    code, out, err = _run(server, gates, "promote", "status", "--file", str(spec))
    assert code == 16, out + err
    assert "held by org/repo#run99 until" in out


def test_two_default_owner_applies_in_two_processes_one_is_refused(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    server = mlflow_sqlite_server
    # Given two terminals on one machine applying two different files to staging
    name = _model(server, 2)
    specs = [write_spec(tmp_path / f"p{v}.yaml", {name: v}) for v in (1, 2)]
    env = {k: v for k, v in os.environ.items()
           if k not in ("ML_PROMOTE_LEASE_OWNER", "GITHUB_RUN_ID", "GITHUB_ACTIONS")}  # fmt: skip
    # a long settle keeps the first holder's lease live while the second one arrives
    env |= {"MLFLOW_TRACKING_URI": server.uri, "ML_PROMOTE_LEASE_SETTLE": "6",
            "ML_PROMOTE_VERDICT_CACHE": "", "USER": "ada"}  # fmt: skip

    # When both apply at once with the default lease owner
    procs = [
        subprocess.Popen(
            [
                MLOPS,
                "promote",
                "apply",
                "--env",
                "staging",
                "--file",
                str(spec),
                "--gates",
                str(GATES),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]

    # Then exactly one proceeds and the other is refused with exit 11, naming a per-process owner
    codes = sorted(code for code, *_ in results)
    assert codes == [0, 11], results
    refused = next(err for code, _, err in results if code == 11)
    assert re.search(rf"ada@{re.escape(socket.gethostname())}:\d+:", refused), refused
    # and the registry holds one file's state: one version in stage Staging
    state = Registry(server.uri).model_state(name)
    assert state is not None
    assert [v for v, i in state.versions.items() if i.stage == "Staging"] == [
        state.aliases["staging"]
    ]


def test_a_lease_a_failed_run_left_is_named_by_status_and_released_by_unlock(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    server, gates = mlflow_sqlite_server, GATES
    registry = Registry(server.uri)
    name = _model(server, 1)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    assert _apply(server, gates, spec, "staging")[0] == 0
    # Given a local apply that died holding staging's lease (its pid no longer runs)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    owner = f"ada@{socket.gethostname()}:{dead}:20300101T000000.000000Z"
    acquire_lease(registry, name, owner, seconds=900, settle=0, env="staging")

    # Then status names it with its owner and expiry, and the verb that releases it
    code, out, err = _run(server, gates, "promote", "status", "--file", str(spec))
    assert f"lease (staging) held by a dead process by {owner} until" in out, out + err
    assert "mlops promote unlock --env staging" in out

    # And unlock releases it; a live holder's lease needs --force (exit 11 without)
    code, out, err = _run(server, gates, "promote", "unlock", "--env", "staging",
                          "--file", str(spec))  # fmt: skip
    assert code == 0, out + err
    assert "released" in out
    acquire_lease(registry, name, "org/repo#run7", seconds=900, settle=0, env="staging")
    args = ("promote", "unlock", "--env", "staging", "--file", str(spec))
    code, out, err = _run(server, gates, *args)
    assert code == 11, out + err
    assert "held by org/repo#run7" in err
    assert _run(server, gates, *args, "--force")[0] == 0
    assert not [k for k in registry.model_tags(name) if k.startswith("lease")]
