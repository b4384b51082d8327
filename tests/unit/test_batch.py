"""Batch scoring (`mlops predict`) against a real embedded MLflow store: the same scores as the
booster, the version's own contract, rejects with reasons, CSV and Parquet in many chunks, and a
one-line error with its exit code for each kind of bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.batch import ModelRef, load_version, predict
from ml.cli import app
from ml.contract import Feature
from ml.errors import ConfigError, DataError, RegistryError
from ml.features import CONTRACT, FEATURES
from ml.registry import Registry
from tests.integration.conftest_serve import feature_frame, log_tiny_version, sqlite_store

NAME = "credit-risk"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Versions: 1 with the contract, 2 from before contracts, 3 with AGE narrowed to 18..60,
    4 whose booster file is gone; production → 1."""
    root = tmp_path_factory.mktemp("batch-store")
    uri = sqlite_store(root)
    narrowed = CONTRACT.replaced(
        Feature("AGE", "int", minimum=18, maximum=60, reason="this version's own bound")
    )
    v1 = log_tiny_version(uri, seed=1, contract=CONTRACT)
    v2 = log_tiny_version(uri, seed=2)
    v3 = log_tiny_version(uri, seed=3, contract=narrowed)
    v4 = log_tiny_version(uri, seed=4, contract=CONTRACT)
    client = MlflowClient(uri, registry_uri=uri)
    model_id = client.get_model_version(NAME, v4).source.removeprefix("models:/")
    [booster] = (root / "art").rglob(f"{model_id}/artifacts/model.ubj")
    booster.unlink()
    client.set_registered_model_alias(NAME, "production", v1)
    return {"uri": uri, "versions": (v1, v2, v3, v4), "root": root}


@pytest.fixture
def registry(store: dict[str, Any]) -> Registry:
    return Registry(store["uri"])


def frame(rows: int = 40, seed: int = 0) -> pd.DataFrame:
    data = feature_frame(rows, seed)
    data.insert(0, "ID", np.arange(1000, 1000 + rows))
    return data


def booster_scores(registry: Registry, version: int, x: pd.DataFrame, tmp: Path) -> np.ndarray:
    import xgboost as xgb

    local = registry.download_version(NAME, version, tmp / f"v{version}")
    booster = xgb.Booster()
    booster.load_model(str(local / "model.ubj"))
    return np.asarray(booster.inplace_predict(x[FEATURES].to_numpy(np.float32)))


def test_every_row_is_scored_as_the_booster_scores_it(registry: Registry, tmp_path: Path) -> None:
    data = frame(40)
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)

    summary = predict(
        registry, ModelRef.parse("credit-risk@production"), str(source), tmp_path / "out.parquet"
    )

    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert list(out.columns) == ["row", "ID", "probability", "model_version"]
    assert out["row"].tolist() == list(range(40))
    assert out["ID"].tolist() == data["ID"].tolist()
    assert set(out["model_version"]) == {1}
    expected = booster_scores(registry, 1, data, tmp_path)
    np.testing.assert_allclose(out["probability"], expected, rtol=1e-6)
    assert (summary.rows, summary.scored, summary.rejected) == (40, 40, 0)
    assert summary.model_version == 1
    assert summary.contract == "logged"
    assert summary.input_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert pq.read_table(tmp_path / "out.rejects.parquet").num_rows == 0


def test_rows_out_of_contract_go_to_the_rejects_file_with_the_reason(
    registry: Registry, tmp_path: Path
) -> None:
    data = frame(30)
    data.loc[3, "AGE"] = 150
    data.loc[7, "SEX"] = 3
    data.loc[7, "PAY_AMT1"] = -5.0
    data.loc[11, "LIMIT_BAL"] = np.nan
    source = tmp_path / "in.parquet"
    data.to_parquet(source, index=False)

    summary = predict(
        registry, ModelRef.parse("credit-risk/1"), str(source), tmp_path / "out.parquet"
    )

    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    rejects = pq.read_table(tmp_path / "out.rejects.parquet").to_pandas()
    assert (summary.rows, summary.scored, summary.rejected) == (30, 27, 3)
    assert rejects["row"].tolist() == [3, 7, 11]
    assert rejects["ID"].tolist() == [1003, 1007, 1011]
    assert rejects["reason"].tolist() == [
        "AGE: 150 is above the maximum 100 (allowed: an integer from 18 to 100)",
        "SEX: 3 is not an allowed code (allowed: one of 1 (male), 2 (female)); "
        "PAY_AMT1: -5 is below the minimum 0 (allowed: a number from 0 to 10,000,000)",
        "LIMIT_BAL: missing (required) (allowed: a number from 0 to 10,000,000)",
    ]
    assert rejects.loc[0, "AGE"] == 150
    assert not set(out["row"]) & {3, 7, 11}
    kept = data.drop(index=[3, 7, 11])
    np.testing.assert_allclose(
        out["probability"], booster_scores(registry, 1, kept, tmp_path), rtol=1e-6
    )


def test_each_version_is_held_to_its_own_contract(registry: Registry, tmp_path: Path) -> None:
    data = frame(10)
    data["AGE"] = 70
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)

    own = predict(registry, ModelRef.parse("credit-risk/3"), str(source), tmp_path / "v3.csv")
    legacy = predict(registry, ModelRef.parse("credit-risk/2"), str(source), tmp_path / "v2.csv")

    assert (own.rejected, own.contract) == (10, "logged")
    assert (
        "AGE: 70 is above the maximum 60"
        in pd.read_parquet(tmp_path / "v3.rejects.parquet")["reason"][0]
    )
    assert (legacy.rejected, legacy.contract) == (0, "built-in")
    assert len(pd.read_csv(tmp_path / "v2.csv")) == 10


def test_text_that_is_not_a_number_rejects_only_its_row(registry: Registry, tmp_path: Path) -> None:
    data = frame(20).astype({"AGE": object, "ID": object})
    data.loc[5, "AGE"] = "forty"
    data.loc[6, "ID"] = "x-6"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)

    summary = predict(
        registry, ModelRef.parse("credit-risk/1"), str(source), tmp_path / "o.parquet"
    )

    rejects = pd.read_parquet(tmp_path / "o.rejects.parquet")
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert (summary.scored, summary.rejected) == (19, 1)
    assert rejects["reason"].tolist() == ["AGE: 'forty' is not a number"]
    assert out.loc[out["row"] == 6, "ID"].tolist() == ["x-6"]


def test_csv_and_parquet_in_many_chunks_give_the_same_scores(
    registry: Registry, tmp_path: Path
) -> None:
    data = frame(100, seed=4).drop(columns=["ID"])
    data.loc[50, "EDUCATION"] = 9
    data.to_csv(tmp_path / "in.csv", index=False)
    data.to_parquet(tmp_path / "in.parquet", index=False, row_group_size=13)
    ref = ModelRef.parse("credit-risk/1")

    whole = predict(registry, ref, str(tmp_path / "in.csv"), tmp_path / "a.parquet")
    chunked = predict(
        registry, ref, str(tmp_path / "in.parquet"), tmp_path / "b.parquet", chunk_rows=7
    )

    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert list(a.columns) == ["row", "probability", "model_version"]  # no ID column in the input
    pd.testing.assert_frame_equal(a, b)
    assert (whole.rejected, chunked.rejected) == (1, 1)
    assert (
        len(pq.ParquetFile(tmp_path / "b.parquet").metadata.row_group(0).to_dict()["columns"]) == 3
    )
    assert pq.ParquetFile(tmp_path / "b.parquet").metadata.num_row_groups > 10


def test_an_input_with_no_rows_gives_empty_outputs(registry: Registry, tmp_path: Path) -> None:
    frame(0).to_csv(tmp_path / "in.csv", index=False)

    summary = predict(
        registry, ModelRef.parse("credit-risk/1"), str(tmp_path / "in.csv"), tmp_path / "o.parquet"
    )

    assert summary.rows == 0
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 0
    assert pq.read_table(tmp_path / "o.rejects.parquet").column_names[:3] == ["row", "ID", "reason"]


def test_a_version_whose_booster_is_gone_is_refused_naming_it(
    registry: Registry, store: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(RegistryError, match=r"model\.ubj is missing"):
        load_version(registry, ModelRef.parse(f"credit-risk/{store['versions'][3]}"), tmp_path)


def test_self_test_scores_the_example_and_the_probe_rows(
    registry: Registry, tmp_path: Path
) -> None:
    model = load_version(registry, ModelRef.parse("credit-risk@production"), tmp_path)

    model.self_test()

    assert model.example.shape == (5, 23)
    assert model.probes().shape[0] > 100


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"ref": "credit-risk"}, ConfigError, "expected NAME@ALIAS or NAME/VERSION"),
        (
            {"ref": "credit-risk@staging"},
            RegistryError,
            r"not set \(aliases of credit-risk: production\)",
        ),
        (
            {"ref": "credit-risk/99"},
            RegistryError,
            r"does not exist \(credit-risk has versions 1..4\)",
        ),
        ({"ref": "nobody@production"}, RegistryError, "not registered"),
        (
            {"source": "absent.csv"},
            DataError,
            "data file not found: absent.csv; --input takes a CSV",
        ),
        ({"source": "ftp://example.com/x.csv"}, DataError, "unsupported data source scheme 'ftp'"),
        ({"drop": "AGE"}, DataError, r"lacks columns \['AGE'\] that the model's contract needs"),
        ({"output": "out.json"}, ConfigError, "write .parquet or .csv"),
        ({"output": "nodir/out.parquet"}, ConfigError, "does not exist"),
        ({"garbage": b'"unterminated\n\x00\x01' * 3}, DataError, "lacks 23 of the 23 columns"),
        ({"garbage": b"PAR1 but not parquet"}, DataError, "cannot read in.csv as CSV or Parquet"),
    ],
)
def test_bad_input_is_one_error_with_a_fix(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: dict[str, Any],
    error: type[Exception], match: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    data = frame(5).drop(columns=[args["drop"]]) if "drop" in args else frame(5)
    data.to_csv("in.csv", index=False)
    if args.get("garbage"):
        Path("in.csv").write_bytes(args["garbage"])

    def run() -> None:
        ref = ModelRef.parse(args.get("ref", "credit-risk/1"))
        predict(registry, ref, args.get("source", "in.csv"), Path(args.get("output", "o.parquet")))

    with pytest.raises(error, match=match):
        run()

    assert not list(tmp_path.glob("*.partial")), "a half-written output was left behind"


def test_the_cli_prints_one_json_summary_and_exits_with_the_error_code(
    store: dict[str, Any], tmp_path: Path
) -> None:
    frame(12).to_csv(tmp_path / "in.csv", index=False)
    env = {"MLFLOW_TRACKING_URI": store["uri"]}
    base = ["predict", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.parquet")]

    ok = CliRunner().invoke(app, [*base, "--model", "credit-risk@production"], env=env)
    unknown = CliRunner().invoke(app, [*base, "--model", "credit-risk@canary"], env=env)
    nope = ["--input", "nope.csv", "--output", "o.parquet"]
    missing = CliRunner().invoke(app, ["predict", "--model", "credit-risk/1", *nope], env=env)

    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("model", "model_version", "rows", "rejected")} == {
        "model": "credit-risk", "model_version": 1, "rows": 12, "rejected": 0,
    }  # fmt: skip
    assert summary["seconds"] > 0
    assert unknown.exit_code == RegistryError.exit_code == 4
    assert missing.exit_code == DataError.exit_code == 3
    for failed in (unknown, missing):
        assert "Traceback" not in failed.output
        assert len(failed.output.strip().splitlines()) == 1, failed.output
