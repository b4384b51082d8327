"""Defects found in review, each as a regression test through the real CLI against a real
`mlflow server` (SQLite backend, served artifacts).

- stage left wrong when staging moves back to the production version;
- a killed apply: status must say "interrupted", plan must not say "no change", production must
  refuse the version;
- a YAML alias bomb and a 10 MB note: refused fast, one line, nothing moved;
- plan exits 0 for unknown models and versions;
- two applies at once: the lease refuses the second, naming the holder;
- two first-time lease writes at once: the store refuses the later insert, which is a lost race
  (exit 11), not a registry failure (exit 4); shown at the lease functions both verbs call, as
  the CLI cannot be made to lose that race on demand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import LeaseError, RegistryError
from ml.promotions.records import LEASE_TAG, acquire_lease, lease_tag, leased, pending_tag
from ml.registry import Registry
from tests.fixtures.models import GATES, register_tiny, snapshot, write_spec
from tests.fixtures.services import MlflowServer

MLOPS = str(Path(sys.executable).with_name("mlops"))


def apply_staging_args(spec: Path) -> list[str]:
    """`promote apply --env staging` of `spec` with the tests' gates."""
    return ["promote", "apply", "--env", "staging", "--file", str(spec), "--gates", str(GATES)]


def _cli(server: MlflowServer, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        list(args),
        env={
            "MLFLOW_TRACKING_URI": server.uri,
            "ML_PROMOTE_LEASE_SETTLE": "0",
            "ML_PROMOTE_GATES_FILE": str(GATES),  # the plan evaluates the gates too
            **env,
        },
    )
    return result.exit_code, " ".join(result.output.split())


def _model(server: MlflowServer, versions: int = 2) -> str:
    name = f"r-{uuid.uuid4().hex[:8]}"
    for _ in range(versions):
        register_tiny(server.uri, name)
    return name


def _apply(server: MlflowServer, spec: Path, env: str, **extra: str) -> tuple[int, str]:
    return _cli(
        server,
        "promote",
        "apply",
        "--env",
        env,
        "--file",
        str(spec),
        "--gates",
        str(GATES),
        **extra,
    )


def _v1_everywhere_then_v2(server: MlflowServer, tmp_path: Path) -> tuple[str, Path]:
    """A model whose v1 is applied to both environments; the spec then names v2."""
    name = _model(server)
    spec = tmp_path / "promotions.yaml"
    write_spec(spec, {name: 1})
    for env in ("staging", "production"):
        assert _apply(server, spec, env)[0] == 0
    write_spec(spec, {name: 2})
    return name, spec


def test_staging_back_on_the_production_version_leaves_no_stale_staging_stage(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    # Given v1 in both environments and v2 then applied to staging
    name, spec = _v1_everywhere_then_v2(mlflow_sqlite_server, tmp_path)
    assert _apply(mlflow_sqlite_server, spec, "staging")[0] == 0

    # When staging moves back to v1 (the production version)
    write_spec(spec, {name: 1})
    code, out = _apply(mlflow_sqlite_server, spec, "staging")
    assert code == 0, out

    # Then v2 is no longer in stage Staging, and status agrees with the registry
    state = Registry(mlflow_sqlite_server.uri).model_state(name)
    assert state is not None
    assert {v: i.stage for v, i in state.versions.items()} == {1: "Production", 2: "Archived"}
    code, out = _cli(mlflow_sqlite_server, "promote", "status", "--file", str(spec))
    assert code == 0, out


class _Killed(BaseException):
    """What a SIGKILL right after the alias write leaves: the process stops, nothing cleans up."""


def test_a_killed_apply_is_interrupted_not_drift_and_blocks_production(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given v1 in both environments and the spec moved to v2
    name, spec = _v1_everywhere_then_v2(mlflow_sqlite_server, tmp_path)

    # When the staging apply dies right after its alias write (the stage write never happens;
    # a BaseException passes every `except`, as a kill would; `finally` still releases the
    # lease, which a SIGKILL would leave for the rerun by the same owner to take over)
    def killed(*_a: object, **_k: object) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(Registry, "transition_stage", killed)
        with pytest.raises(_Killed):
            CliRunner().invoke(
                app,
                apply_staging_args(spec),
                env={
                    "MLFLOW_TRACKING_URI": mlflow_sqlite_server.uri,
                    "ML_PROMOTE_LEASE_SETTLE": "0",
                },
                catch_exceptions=False,
            )

    # Then status says which apply was interrupted (exit 16), not "moved outside git"
    code, out = _cli(mlflow_sqlite_server, "promote", "status", "--file", str(spec))
    assert code == 16, out
    assert "interrupted apply (v2, was v1) in staging" in out
    assert "outside git" not in out
    # And plan does not claim there is nothing to do
    code, out = _cli(mlflow_sqlite_server, "promote", "plan", "--file", str(spec))
    assert code == 0, out
    assert "no change" not in out.split(",")[0]
    assert "repair: finish the interrupted apply" in out
    # And production refuses v2 until staging's apply has finished
    code, out = _apply(mlflow_sqlite_server, spec, "production")
    assert code == 7, out
    assert "never verified in staging" in out

    # And a rerun (the same owner: a re-run of the job) finishes it; production then follows
    assert _apply(mlflow_sqlite_server, spec, "staging")[0] == 0
    assert _apply(mlflow_sqlite_server, spec, "production")[0] == 0
    code, out = _cli(mlflow_sqlite_server, "promote", "status", "--file", str(spec))
    assert code == 0, out
    state = Registry(mlflow_sqlite_server.uri).model_state(name)
    assert state is not None
    assert pending_tag("staging") not in state.tags
    assert LEASE_TAG not in state.tags


BOMB = (
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "models: *i\n"
)


@pytest.mark.parametrize("verb", ["validate", "plan", "apply", "status"])
@pytest.mark.parametrize("case", ["alias-bomb", "10MB-note"])
def test_hostile_specs_are_refused_in_one_line_and_move_nothing(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path, verb: str, case: str
) -> None:
    name = _model(mlflow_sqlite_server, versions=1)
    spec = tmp_path / "promotions.yaml"
    if case == "alias-bomb":
        assert len(BOMB) < 600
        spec.write_text(BOMB)
    else:
        spec.write_text(f"models:\n  {name}:\n    version: 1\n    note: {'x' * 10_000_000}\n")
    before = snapshot(mlflow_sqlite_server.uri, [name])
    args = ["promote", verb, "--file", str(spec)] + (
        ["--env", "staging"] if verb == "apply" else []
    )

    started = time.monotonic()
    code, out = _cli(mlflow_sqlite_server, *args)

    assert code == 2, out
    assert time.monotonic() - started < 20
    assert len(out) < 400, out
    assert snapshot(mlflow_sqlite_server.uri, [name]) == before


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("no-such-model:\n    version: 1", "unknown model 'no-such-model'"),
        ("{name}:\n    version: 9", "v9 does not exist"),
    ],
    ids=["unknown-model", "unknown-version"],
)
def test_plan_exits_non_zero_for_unknown_models_and_versions(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path, entry: str, expected: str
) -> None:
    name = _model(mlflow_sqlite_server, versions=1)
    spec = tmp_path / "promotions.yaml"
    spec.write_text("models:\n  " + entry.format(name=name) + "\n")
    code, out = _cli(mlflow_sqlite_server, "promote", "plan", "--file", str(spec))
    assert code == 5, out
    assert expected in out
    assert f"{spec}:2" in out


def test_an_apply_while_another_holds_the_lease_is_refused_by_name(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    # Given another apply (or a deploy) holding the model's lease
    name = _model(mlflow_sqlite_server, versions=1)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    registry = Registry(mlflow_sqlite_server.uri)
    acquire_lease(registry, name, "deploy-run-41", run_url="https://ci/runs/41", settle=0)
    before = snapshot(mlflow_sqlite_server.uri, [name])

    # When an apply starts, then it is refused naming the holder, and nothing moved
    code, out = _apply(mlflow_sqlite_server, spec, "staging", ML_PROMOTE_LEASE_OWNER="run-42")
    assert code == 11, out
    assert "leased by deploy-run-41 (https://ci/runs/41)" in out
    assert snapshot(mlflow_sqlite_server.uri, [name]) == before


class _RivalInsertsFirst(Registry):
    """A registry whose lease writes lose to a rival's insert.

    The store's refusal of a concurrent first insert needs two inserts inside one SQLite write
    window and cannot be produced on demand; this stands in for that moment only: the rival's
    lease really lands on the server, then our write fails as the server failed it in CI.
    """

    def __init__(self, uri: str, rival: str | None) -> None:
        super().__init__(uri)
        self.rival = rival

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        if key.startswith(LEASE_TAG) and self.rival is not None:
            lease = {**json.loads(value), "owner": self.rival, "run_url": None}
            Registry(self.tracking_uri).set_model_tag(name, key, json.dumps(lease))
        if key.startswith(LEASE_TAG):
            raise RegistryError(
                f"tag {name} {key}: registered-models/set-tag: BAD_REQUEST: "
                "(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_tags.key"
            )
        super().set_model_tag(name, key, value)


def test_a_lease_write_the_store_refuses_for_a_rival_insert_is_a_lost_race(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    names = [_model(mlflow_sqlite_server, versions=1) for _ in range(2)]
    racing = _RivalInsertsFirst(mlflow_sqlite_server.uri, rival="run-7")
    # When our lease write is refused because run-7's landed first (one model taken alone as a
    # deploy does, one in a set as an apply does), then we lost the race to run-7 (exit 11
    # names it), and run-7's lease is left in place
    with pytest.raises(LeaseError, match="lost the lease race to run-7"):
        acquire_lease(racing, names[0], "run-8", settle=0, env="staging")
    with (
        pytest.raises(LeaseError, match="lost the lease race to run-7"),
        leased(racing, [names[1]], "run-8", settle=0, env="staging"),
    ):
        pytest.fail("the block ran without the lease")
    for name in names:
        tags = Registry(mlflow_sqlite_server.uri).model_tags(name)
        assert json.loads(tags[lease_tag("staging")])["owner"] == "run-7"


def test_a_lease_write_refused_with_no_rival_lease_stays_a_registry_error(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    name = _model(mlflow_sqlite_server, versions=1)
    failing = _RivalInsertsFirst(mlflow_sqlite_server.uri, rival=None)
    with pytest.raises(RegistryError, match="UNIQUE constraint failed"):
        acquire_lease(failing, name, "run-8", settle=0, env="staging")
    assert lease_tag("staging") not in Registry(mlflow_sqlite_server.uri).model_tags(name)


def test_two_applies_at_once_one_wins_the_other_is_told(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    # Given one spec and two real `mlops promote apply` processes started together
    name = _model(mlflow_sqlite_server, versions=1)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    procs = [
        subprocess.Popen(
            [MLOPS, *apply_staging_args(spec)],
            env={
                **os.environ,
                "MLFLOW_TRACKING_URI": mlflow_sqlite_server.uri,
                "ML_PROMOTE_LEASE_OWNER": f"run-{i}",
                "ML_PROMOTE_LEASE_SETTLE": "1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outcomes = [
        (p.wait(timeout=300), " ".join((p.stdout.read() if p.stdout else "").split()))
        for p in procs
    ]

    # Then at least one applied, and any loser says why: the lease (11) or, if both slipped
    # through the lease's window, a verification that names the lease (7); nothing is left
    # half-done
    codes = sorted(code for code, _ in outcomes)
    assert codes[0] == 0, outcomes
    for code, out in outcomes:
        assert code in (0, 11, 7), outcomes
        if code:
            assert "lease" in out, outcomes
    code, out = _cli(
        mlflow_sqlite_server, "promote", "status", "--file", str(spec), "--env", "staging"
    )
    assert code == 0, out
