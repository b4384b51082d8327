"""`ml.registry.Registry` against real stores: the direct SQLite reader returns exactly what
MlflowClient returns, it knows the schema MLflow writes today, and nothing leaves MLflow's
process-wide URIs behind."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from ml.registry import KNOWN_SCHEMA, Registry
from tests.fixtures.models import register_tiny


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
