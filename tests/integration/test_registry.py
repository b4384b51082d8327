"""`ml.registry.Registry` against real stores: the direct SQLite reader returns exactly what
MlflowClient returns, it knows the schema of every MLflow the lock allows and never reads one it
does not know, reads over REST search every model at once, writes and the gates' reads over REST
match MLflow's client without importing it, and nothing leaves MLflow's process-wide URIs
behind."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from ml.registry import KNOWN_SCHEMA, Registry
from tests.fixtures.models import CountingClient, register_tiny
from tests.fixtures.services import MlflowServer


def test_the_sqlite_reader_equals_mlflow_client(tmp_path: Path) -> None:
    # Given an embedded store with aliases, model and version tags, stages and a deleted version
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    art = tmp_path / "artifacts"
    for name in ("a", "b"):
        for _ in range(3):
            register_tiny(uri, name, artifact_root=art)
    client = MlflowClient(uri, registry_uri=uri)
    client.set_registered_model_alias("a", "staging", "2")
    client.set_registered_model_alias("a", "production", "1")
    client.set_registered_model_tag("a", "promotion.staging.version", "2")
    client.set_model_version_tag("a", "2", "promotion.staging.abc", '{"x": 1}')
    client.transition_model_version_stage("a", "1", "Production")
    client.delete_model_version("a", "3")
    client.delete_registered_model("b")

    # When both paths read the models (a replaced client turns the direct reader off)
    fast = Registry(uri)
    assert fast._fast() is not None
    slow = Registry(uri)
    slow.client = slow.client
    names = ["a", "b", "missing"]

    # Then they agree, deleted versions and models included
    got = fast.read_models(names)
    assert got == slow.read_models(names)
    assert got["b"] is None
    assert got["missing"] is None
    a = got["a"]
    assert a is not None
    assert sorted(a.versions) == [1, 2]
    assert a.aliases == {"staging": 2, "production": 1}
    assert a.versions[2].aliases == ("staging",)


def test_the_reader_knows_the_schema_mlflow_writes_today(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri, registry_uri=uri).search_registered_models()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        (revision,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision in KNOWN_SCHEMA, f"MLflow's schema moved to {revision}: check the reader"


def test_a_missing_store_reads_as_nothing_registered_and_is_not_created(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'absent.db'}"
    assert Registry(uri).read_models(["a"]) == {"a": None}
    assert not (tmp_path / "absent.db").exists()


def test_fluent_blocks_leave_no_global_uri_behind(tmp_path: Path) -> None:
    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    register_tiny(f"sqlite:///{tmp_path / 'mlflow.db'}", "a", artifact_root=tmp_path / "art")
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == before


def test_download_and_resolve_a_version(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_tiny(uri, "a", artifact_root=tmp_path / "art")
    registry = Registry(uri)
    registry.set_alias("a", "production", 1)
    found = registry.get_by_alias("a", "production")
    assert found is not None
    assert found.version == 1
    assert registry.get_by_alias("a", "staging") is None
    local = registry.download_version("a", 1, tmp_path / "dl")
    assert (local / "MLmodel").is_file()


# --- the direct SQLite reader is proven against every MLflow the lock allows ----------------


def test_the_lock_allows_exactly_the_installed_mlflow() -> None:
    # The reader is proven below against the installed MLflow; the lock must not allow another.
    lock = (Path(__file__).resolve().parents[2] / "uv.lock").read_text(encoding="utf-8")
    locked = {
        block.split('version = "', 1)[1].split('"', 1)[0]
        for block in lock.split("[[package]]")
        if '\nname = "mlflow"\n' in block
    }
    assert locked == {mlflow.__version__}, locked


def test_the_reader_knows_the_alembic_head_of_the_installed_mlflow() -> None:
    import mlflow.store.db_migrations as migrations
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    assert heads <= KNOWN_SCHEMA, (
        f"MLflow {mlflow.__version__} migrates to {heads}; the reader knows {set(KNOWN_SCHEMA)}: "
        "check the registry tables it reads, then add the revision"
    )


def test_an_unknown_schema_revision_is_never_read_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml.registry

    # Given a real store, and a direct reader that fails loudly whenever it is used
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_tiny(uri, "a", artifact_root=tmp_path / "artifacts")

    def used(*_: object) -> None:
        raise AssertionError("the direct reader read the tables")

    monkeypatch.setattr(ml.registry._SqliteReader, "read", used)
    # (control: at the known revision the direct reader is the one that reads)
    with pytest.raises(AssertionError, match="direct reader"):
        Registry(uri).read_models(["a"])

    # When the store's schema revision is one the reader does not know
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")

    # Then the adapter reads through MLflow's client instead, and gets the model
    got = Registry(uri).read_models(["a", "b"])
    assert got["b"] is None
    assert got["a"] is not None
    assert sorted(got["a"].versions) == [1]


def test_reads_over_rest_search_every_model_at_once(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    # Given three models on a server, one with an alias, a tag and a second version
    names = [f"batch-{tmp_path.name[-12:]}-{i}".replace("_", "-") for i in range(3)]
    for name in names:
        register_tiny(mlflow_sqlite_server.uri, name)
    register_tiny(mlflow_sqlite_server.uri, names[0])
    client = MlflowClient(mlflow_sqlite_server.uri)
    client.set_registered_model_alias(names[0], "staging", "2")
    client.set_registered_model_tag(names[0], "promotion.staging.version", "2")

    # When the adapter reads them with a missing one, counting its calls
    registry = Registry(mlflow_sqlite_server.uri)
    counting = CountingClient(registry.client)
    registry.client = counting  # type: ignore[assignment]
    got = registry.read_models([*names, "absent-model"])

    # Then two searches read the three models, and the missing one is read on its own
    assert [c for c in counting.calls if c.startswith("search")] == [
        "search_registered_models",
        "search_model_versions",
    ]
    assert got["absent-model"] is None
    one = got[names[0]]
    assert one is not None
    assert one.aliases == {"staging": 2}
    assert one.tags["promotion.staging.version"] == "2"
    assert sorted(one.versions) == [1, 2]
    assert one.versions[2].aliases == ("staging",)
    # and MLflow's REST API read without MLflow's client (what `promote plan` and `status` use)
    # returns the same, whole and model by model
    direct = Registry(mlflow_sqlite_server.uri)
    assert direct.read_models([*names, "absent-model"]) == got
    for name in names:
        assert direct.read_models([name])[name] == got[name]
    assert registry.models_tags(names)[names[0]] == one.tags


def test_reads_over_rest_import_no_mlflow(mlflow_sqlite_server: MlflowServer) -> None:
    # `promote plan` and `status` against a server pay no MLflow import (seconds): the reads
    # go to MLflow's REST API directly
    name = "rest-no-import"
    register_tiny(mlflow_sqlite_server.uri, name)
    code = (
        "import sys; from ml.registry import Registry; "
        f"state = Registry({mlflow_sqlite_server.uri!r}).read_models([{name!r}])[{name!r}]; "
        "assert state is not None and 1 in state.versions, state; "
        "assert 'mlflow' not in sys.modules, 'mlflow imported'"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_writes_and_gate_reads_over_rest_match_mlflow_and_import_no_mlflow(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    # Given a version on a server (its files behind the server's artifact proxy)
    name = "rest-writes"
    info = register_tiny(mlflow_sqlite_server.uri, name)
    assert info.run_id is not None
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"

    # When a process that never imports MLflow writes what apply writes and reads what the
    # gates read
    code = f"""
import json, sys
from pathlib import Path
from ml.registry import Registry
r = Registry({mlflow_sqlite_server.uri!r})
r.set_model_tag({name!r}, "promotion.staging.pending", "{{}}")
r.set_alias({name!r}, "staging", 1)
r.transition_stage({name!r}, 1, "Staging")
r.set_version_tag({name!r}, 1, "promotion.staging.abc", "{{}}")
r.set_model_tag({name!r}, "promotion.staging.version", "1")
r.delete_model_tag({name!r}, "promotion.staging.pending")
r.delete_model_tag({name!r}, "never-set")
r.set_alias({name!r}, "production", 1)
r.delete_alias({name!r}, "production")
r.delete_alias({name!r}, "production")
model = r.download_version({name!r}, 1, Path({str(ours)!r}))
contract = r.download_run_file({info.run_id!r}, "contract.json", Path({str(ours)!r}) / "run")
absent = r.download_run_file({info.run_id!r}, "no-such-file.json", Path({str(ours)!r}) / "run")
print(json.dumps([str(model), str(contract), absent, r.run_metrics({info.run_id!r}),
                  r.get_version({name!r}, 1).stage, r.get_version({name!r}, 99)]))
assert "mlflow" not in sys.modules, "mlflow imported"
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    model, contract, absent, metrics, stage, missing = json.loads(done.stdout.splitlines()[-1])

    # Then MLflow's client sees every write, and the files are MLflow's own, byte for byte
    client = MlflowClient(mlflow_sqlite_server.uri)
    rm = client.get_registered_model(name)
    assert rm.aliases == {"staging": "1"}
    assert rm.tags == {"promotion.staging.version": "1"}
    mv = client.get_model_version(name, "1")
    assert mv.current_stage == "Staging" == stage
    assert mv.tags["promotion.staging.abc"] == "{}"
    assert (absent, missing) == (None, None)
    assert metrics == client.get_run(info.run_id).data.metrics
    uri = client.get_model_version_download_uri(name, "1")
    assert uri.startswith("mlflow-artifacts:/"), uri  # the proxy path, not MLflow's fallback
    expected = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(theirs), tracking_uri=mlflow_sqlite_server.uri
        )
    )
    assert Path(model).name == expected.name

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(Path(model)) == files(expected)
    assert "MLmodel" in files(expected)
    run_contract = mlflow.artifacts.download_artifacts(
        run_id=info.run_id,
        artifact_path="contract.json",
        dst_path=str(theirs / "run"),
        tracking_uri=mlflow_sqlite_server.uri,
    )
    assert Path(contract).read_bytes() == Path(run_contract).read_bytes()
