"""The engine against a real `mlflow server` on PostgreSQL: apply, idempotency, crash safety,
out-of-band drift, rollback with an explicit waiver."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import ApplyError
from ml.promotions.apply import ApplyContext, ApplyOptions
from ml.promotions.apply import apply_spec as _apply_spec
from ml.promotions.gates import GatesFile, load_gates
from ml.promotions.reconcile import desired_from
from ml.promotions.records import records
from ml.promotions.spec import LoadedSpec, load_spec
from ml.registry import Registry
from tests.fixtures.models import (
    GATES,
    GOOD_METRICS,
    CountingClient,
    register_tiny,
    snapshot,
    write_spec,
)
from tests.fixtures.services import MlflowServer

CTX = ApplyContext(git_sha="f" * 40, actor="ci", pr="7", run_url="https://x/run/1", time="T0")
OPTIONS = ApplyOptions(owner="tests", settle=0)


def apply_spec(
    registry: Registry,
    loaded: LoadedSpec,
    env: str,
    ctx: ApplyContext,
    gates: GatesFile | None = None,
) -> list:
    """The engine's apply with this module's lease owner and no settle wait."""
    return _apply_spec(registry, desired_from(loaded), env, ctx, gates=gates, options=OPTIONS)


def _model(server: MlflowServer, versions: int = 2, **kw: object) -> str:
    name = f"m-{uuid.uuid4().hex[:8]}"
    for _ in range(versions):
        register_tiny(server.uri, name, **kw)  # type: ignore[arg-type]
    return name


def _cli(server: MlflowServer, *args: str) -> tuple[int, str]:
    # the tests' gates for every verb (the plan evaluates them too)
    env = {"MLFLOW_TRACKING_URI": server.uri, "ML_PROMOTE_GATES_FILE": str(GATES)}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_apply_staging_then_production_is_idempotent(
    mlflow_pg_server: MlflowServer, tmp_path: Path
) -> None:
    # Given a model with one version and a spec naming it
    name = _model(mlflow_pg_server, versions=1)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    base = ["--file", str(spec), "--gates", str(GATES)]

    # When staging, then production is applied
    code, out = _cli(mlflow_pg_server, "promote", "apply", "--env", "staging", *base, "--pr", "7")
    assert code == 0, out
    assert "alias staging: none → 1" in out
    code, out = _cli(mlflow_pg_server, "promote", "apply", "--env", "production", *base)
    assert code == 0, out

    # Then alias, stage and audit tag are set
    state = Registry(mlflow_pg_server.uri).model_state(name)
    assert state is not None
    assert state.aliases == {"staging": 1, "production": 1}
    assert state.versions[1].stage == "Production"
    assert [r["pr"] for r in records(state.versions[1], "staging")] == ["7"]

    # And a second apply says nothing changed and makes no write call
    code, out = _cli(mlflow_pg_server, "promote", "apply", "--env", "production", *base)
    assert code == 0, out
    assert "nothing changed" in out
    registry = Registry(mlflow_pg_server.uri)
    counting = CountingClient(registry.client)
    registry.client = counting  # type: ignore[assignment]
    for env in ("staging", "production"):
        actions = apply_spec(registry, load_spec(spec), env, CTX, gates=load_gates(GATES))
        assert all(not a.writes for a in actions)
    assert counting.writes == []
    assert counting.calls  # it did read

    # And the status is in sync
    code, out = _cli(mlflow_pg_server, "promote", "status", "--file", str(spec))
    assert code == 0, out
    assert "in-sync" in out


def test_production_refuses_a_version_never_in_staging(
    mlflow_pg_server: MlflowServer, tmp_path: Path
) -> None:
    name = _model(mlflow_pg_server, versions=1)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    before = snapshot(mlflow_pg_server.uri, [name])
    base = ["--file", str(spec), "--gates", str(GATES)]

    code, out = _cli(mlflow_pg_server, "promote", "apply", "--env", "production", *base)
    assert code == ApplyError.exit_code, out
    assert "never verified in staging" in out
    assert snapshot(mlflow_pg_server.uri, [name]) == before

    code, out = _cli(
        mlflow_pg_server, "promote", "apply", "--env", "production", *base, "--allow-skip-staging"
    )
    assert code == 0, out
    info = Registry(mlflow_pg_server.uri).get_version(name, 1)
    assert info is not None
    assert [r["allow_skip_staging"] for r in records(info, "production")] == [True]


class _CrashError(RuntimeError):
    pass


def test_crash_between_alias_and_stage_write_converges(
    mlflow_pg_server: MlflowServer, tmp_path: Path
) -> None:
    # Given two identical models, each with v1 in production and v2 in staging
    crashed, clean = _model(mlflow_pg_server), _model(mlflow_pg_server)
    gates = load_gates(GATES)
    registry = Registry(mlflow_pg_server.uri)
    for name in (crashed, clean):
        spec1 = load_spec(write_spec(tmp_path / f"{name}-1.yaml", {name: 1}))
        apply_spec(registry, spec1, "staging", CTX, gates=gates)
        apply_spec(registry, spec1, "production", CTX, gates=gates)
        spec2 = load_spec(write_spec(tmp_path / f"{name}-2.yaml", {name: 2}))
        apply_spec(registry, spec2, "staging", CTX, gates=gates)

    # When production apply of v2 crashes right after the alias write
    faulty = Registry(mlflow_pg_server.uri)

    def boom(*_a: object, **_k: object) -> None:
        raise _CrashError("killed between alias and stage write")

    faulty.transition_stage = boom  # type: ignore[method-assign]
    spec_crashed = load_spec(tmp_path / f"{crashed}-2.yaml")
    with pytest.raises(_CrashError):
        apply_spec(faulty, spec_crashed, "production", CTX, gates=gates)
    half = registry.model_state(crashed)
    assert half is not None
    assert half.aliases["production"] == 2
    assert half.versions[2].stage == "Staging"  # the crash left the stage behind

    # And status names the half-applied state as an interrupted apply, not as drift
    code, out = _cli(mlflow_pg_server, "promote", "status", "--file", str(spec_crashed.path))
    assert code == 16, out
    assert "interrupted apply (v2, was v1) in production" in out

    # Then a rerun converges to exactly what a clean apply produces
    apply_spec(registry, spec_crashed, "production", CTX, gates=gates)
    apply_spec(registry, load_spec(tmp_path / f"{clean}-2.yaml"), "production", CTX, gates=gates)
    got = snapshot(mlflow_pg_server.uri, [crashed, clean])
    assert got[crashed] == got[clean]
    assert got[crashed]["aliases"] == {"staging": 2, "production": 2}  # type: ignore[index]
    assert got[crashed]["versions"][1][0] == "Archived"  # type: ignore[index]
    assert got[crashed]["versions"][2][0] == "Production"  # type: ignore[index]


def test_out_of_band_alias_move_is_drift_and_apply_restores(
    mlflow_pg_server: MlflowServer, tmp_path: Path
) -> None:
    # Given v1 applied to both environments
    name = _model(mlflow_pg_server)
    spec = write_spec(tmp_path / "promotions.yaml", {name: 1})
    for env in ("staging", "production"):
        code, out = _cli(
            mlflow_pg_server, "promote", "apply", "--env", env, "--file", str(spec),
            "--gates", str(GATES),
        )  # fmt: skip
        assert code == 0, out

    # When someone moves the production alias in the MLflow UI
    MlflowClient(
        mlflow_pg_server.uri, registry_uri=mlflow_pg_server.uri
    ).set_registered_model_alias(name, "production", "2")

    # Then status exits non-zero and says what moved
    code, out = _cli(mlflow_pg_server, "promote", "status", "--file", str(spec))
    assert code == 6, out
    assert "alias moved outside git: v1 → v2" in out

    # And apply restores git's state
    code, out = _cli(
        mlflow_pg_server, "promote", "apply", "--env", "production", "--file", str(spec),
        "--gates", str(GATES),
    )  # fmt: skip
    assert code == 0, out
    assert "alias production: 2 → 1" in out
    code, out = _cli(mlflow_pg_server, "promote", "status", "--file", str(spec))
    assert code == 0, out


def test_rollback_waives_regression_visibly(mlflow_pg_server: MlflowServer, tmp_path: Path) -> None:
    # Given v1 (roc_auc 0.78) then v2 (0.80) promoted to production
    name = f"m-{uuid.uuid4().hex[:8]}"
    register_tiny(mlflow_pg_server.uri, name)
    register_tiny(mlflow_pg_server.uri, name, metrics={**GOOD_METRICS, "roc_auc": 0.80})
    spec = tmp_path / "promotions.yaml"
    base = ["--file", str(spec), "--gates", str(GATES)]
    for version in (1, 2):
        write_spec(spec, {name: version})
        for env in ("staging", "production"):
            code, out = _cli(mlflow_pg_server, "promote", "apply", "--env", env, *base)
            assert code == 0, out

    # When a plain edit back to v1 is validated, the regression gate fails
    write_spec(spec, {name: 1})
    code, out = _cli(mlflow_pg_server, "promote", "validate", *base)
    assert code == 5, out
    assert "regression:roc_auc" in out

    # And `mlops rollback` writes v1 with an explicit marker, keeping comments
    write_spec(spec, {name: 2})
    code, out = _cli(mlflow_pg_server, "rollback", name, "--file", str(spec), "--reason", "smoke")
    assert code == 0, out
    text = spec.read_text()
    assert "# test spec" in text
    assert "# model" in text
    assert load_spec(spec).spec.models[name].version == 1
    assert load_spec(spec).spec.models[name].rollback is True

    # Then validate passes with the waiver shown, and plan marks the ROLLBACK
    code, out = _cli(mlflow_pg_server, "promote", "validate", *base)
    assert code == 0, out
    assert "WAIVED" in out
    code, out = _cli(mlflow_pg_server, "promote", "plan", "--file", str(spec))
    assert code == 0, out
    assert "production 2 → 1 after approval ROLLBACK" in out
    code, out = _cli(mlflow_pg_server, "promote", "plan", "--file", str(spec), "--format", "json")
    assert json.loads(CliRunner().invoke(app, ["promote", "plan", "--file", str(spec), "--format",
                                                "json"], env={"MLFLOW_TRACKING_URI":
                                                mlflow_pg_server.uri, "ML_PROMOTE_GATES_FILE":
                                                str(GATES)}).stdout)["steps"][1][
        "rollback"
    ]  # fmt: skip


def test_a_rollback_adds_its_own_record_and_a_crash_before_it_is_rerun(
    mlflow_pg_server: MlflowServer, tmp_path: Path
) -> None:
    # Given v1, then v2, applied to both environments from their own commits
    name = _model(mlflow_pg_server)
    registry = Registry(mlflow_pg_server.uri)
    specs = {v: load_spec(write_spec(tmp_path / f"v{v}.yaml", {name: v})) for v in (1, 2)}
    for version, sha in ((1, "a" * 40), (2, "b" * 40)):
        ctx = replace(CTX, git_sha=sha, time=f"2030-01-0{version}T00:00:00Z")
        for env in ("staging", "production"):
            apply_spec(registry, specs[version], env, ctx)

    # When production rolls back to v1 and the apply dies right before its audit record
    rollback_ctx = replace(CTX, git_sha="c" * 40, time="2030-01-03T00:00:00Z")
    faulty = Registry(mlflow_pg_server.uri)
    faulty.client = CountingClient(faulty.client)  # type: ignore[assignment]

    def boom(*_a: object, **_k: object) -> None:
        raise _CrashError("killed before the audit record")

    faulty.set_version_tag = boom  # type: ignore[method-assign]
    with pytest.raises(_CrashError):
        apply_spec(faulty, specs[1], "production", rollback_ctx)

    # Then a rerun writes the record and the model tag under the lease, and moves nothing
    counting = CountingClient(registry.client)
    registry.client = counting  # type: ignore[assignment]
    apply_spec(registry, specs[1], "production", rollback_ctx)
    assert faulty.client.writes[:3] == [  # type: ignore[attr-defined]
        "set_registered_model_tag",  # the lease
        "set_registered_model_tag",  # promotion.production.pending, before the alias
        "set_registered_model_alias",
    ]
    assert counting.writes == [
        "set_registered_model_tag",  # the lease
        "set_registered_model_tag",  # pending
        "set_model_version_tag",  # the record
        "set_registered_model_tag",  # promotion.production.version
        "delete_registered_model_tag",  # pending, after verification
        "delete_registered_model_tag",  # the lease
    ]

    # And v1 keeps both promotions to production, each under its own commit
    info = registry.get_version(name, 1)
    assert info is not None
    assert [(r["git_sha"], r["previous"]) for r in records(info, "production")] == [
        ("a" * 40, None),
        ("c" * 40, 2),
    ]

    # And neither a rerun of that apply nor the same spec applied from a later commit writes
    counting.calls.clear()
    apply_spec(registry, specs[1], "production", rollback_ctx)
    apply_spec(registry, specs[1], "production", replace(CTX, git_sha="d" * 40))
    assert counting.writes == []
