"""Spark batch scoring (ml/spark/scoring.py) against the local engine (ml/batch.py): the same
version on the same input gives the same rows, bitwise the same probabilities and the same
rejects; a failed job leaves the old outputs and no staging directory.

Real parts: a SparkSession on `local[2]` (JVM + Python workers), an embedded MLflow registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ml.batch import ModelRef
from ml.batch import predict as predict_locally
from ml.cli import app
from ml.errors import ConfigError, DataError
from ml.features import CONTRACT
from ml.registry import Registry
from ml.spark.scoring import predict as predict_on_spark
from ml.spark.scoring import score_dataframe
from tests.integration.conftest_serve import feature_frame, log_tiny_version, sqlite_store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

NAME = "credit-risk"
ROWS = 200_000


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One version with the contract, aliased production."""
    root = tmp_path_factory.mktemp("spark-store")
    uri = sqlite_store(root)
    version = log_tiny_version(uri, seed=7, contract=CONTRACT)
    registry = Registry(uri)
    registry.set_alias(NAME, "production", int(version))
    return registry


def book(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` applicants with ids, and out-of-contract rows planted every 997 rows."""
    data = feature_frame(rows, seed)
    data.insert(0, "ID", np.arange(10_000, 10_000 + rows, dtype=np.int64))
    data.loc[::997, "AGE"] = 150  # above the maximum
    data.loc[5::1499, "SEX"] = 3  # not an allowed code
    data.loc[11::2003, "LIMIT_BAL"] = np.nan  # missing
    return data


def read_dir(path: Path) -> pd.DataFrame:
    """A Spark output directory (part files) in input order."""
    return pq.read_table(path).to_pandas().sort_values("row", ignore_index=True)


def both_engines(
    spark_session: SparkSession, registry: Registry, source: Path, tmp: Path
) -> tuple[Any, Any, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ref = ModelRef.parse(f"{NAME}@production")
    local = predict_locally(registry, ref, str(source), tmp / "local.parquet")
    distributed = predict_on_spark(
        spark_session, registry, ref, str(source), str(tmp / "spark.parquet")
    )
    return (
        local,
        distributed,
        pq.read_table(tmp / "local.parquet").to_pandas(),
        pq.read_table(tmp / "local.rejects.parquet").to_pandas(),
        read_dir(tmp / "spark.parquet"),
        read_dir(tmp / "spark.rejects.parquet"),
    )


def test_spark_scores_200k_rows_exactly_as_the_local_engine(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given 200k rows in a Parquet file split into many row groups (so many tasks), some rows
    # out of contract
    data = book(ROWS)
    source = tmp_path / "book.parquet"
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), source, row_group_size=20_000)

    # When both engines score it with the same version
    local, distributed, scores, rejects, spark_scores, spark_rejects = both_engines(
        spark_session, registry, source, tmp_path
    )

    # Then the same rows are scored, with bitwise the same probabilities
    assert list(spark_scores.columns) == list(scores.columns)
    assert list(spark_scores.columns) == ["row", "ID", "probability", "model_version"]
    assert len(spark_scores) == len(scores) > 190_000
    for column in ("row", "ID", "model_version"):
        assert spark_scores[column].tolist() == scores[column].tolist()
    assert np.array_equal(spark_scores["probability"].to_numpy(), scores["probability"].to_numpy())
    # and the same rejects, with the same reasons and values
    assert len(rejects) > 300
    assert list(spark_rejects.columns) == list(rejects.columns)
    pd.testing.assert_frame_equal(spark_rejects, rejects, check_exact=True)
    # and the same summary, the input's checksum included
    for field in ("model_version", "contract", "input_sha256", "rows", "scored", "rejected"):
        assert getattr(distributed, field) == getattr(local, field), field
    # and nothing staged is left beside the outputs
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_csv_directories_with_text_cells_reject_only_those_rows(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given a CSV input where one cell is text and another out of contract
    data = book(3_000, seed=3)
    data["PAY_AMT1"] = data["PAY_AMT1"].astype(object)
    data.loc[42, "PAY_AMT1"] = "twelve"
    source = tmp_path / "book.csv"
    data.to_csv(source, index=False)

    # When both engines score it
    local, _, scores, rejects, spark_scores, spark_rejects = both_engines(
        spark_session, registry, source, tmp_path
    )

    # Then Spark scores and rejects the same rows (the id is read as text from CSV)
    assert spark_scores["row"].tolist() == scores["row"].tolist()
    assert np.array_equal(spark_scores["probability"].to_numpy(), scores["probability"].to_numpy())
    assert spark_rejects["row"].tolist() == rejects["row"].tolist()
    assert spark_rejects["reason"].tolist() == rejects["reason"].tolist()
    assert "PAY_AMT1: 'twelve' is not a number" in spark_rejects["reason"].tolist()
    assert spark_scores["ID"].tolist() == [str(i) for i in scores["ID"]]
    assert local.rejected == len(spark_rejects)


def test_a_directory_of_parquet_files_is_numbered_in_path_order(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given one book written as three Parquet files of different sizes, and as one file
    data = book(9_000, seed=11)
    whole = tmp_path / "book.parquet"
    data.to_parquet(whole, index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    for name, (start, end) in {"a": (0, 1_000), "b": (1_000, 6_500), "c": (6_500, 9_000)}.items():
        data.iloc[start:end].to_parquet(parts / f"part-{name}.parquet", index=False)
    ref = ModelRef.parse(f"{NAME}@production")
    predict_locally(registry, ref, str(whole), tmp_path / "local.parquet")

    # When Spark scores the directory
    predict_on_spark(spark_session, registry, ref, str(parts), str(tmp_path / "spark.parquet"))

    # Then `row` is the position in the files taken in path order: the single file's rows
    local = pq.read_table(tmp_path / "local.parquet").to_pandas()
    spark_scores = read_dir(tmp_path / "spark.parquet")
    assert spark_scores["row"].tolist() == local["row"].tolist()
    assert spark_scores["ID"].tolist() == local["ID"].tolist()
    assert np.array_equal(spark_scores["probability"].to_numpy(), local["probability"].to_numpy())
    local_rejects = pq.read_table(tmp_path / "local.rejects.parquet").to_pandas()
    pd.testing.assert_frame_equal(read_dir(tmp_path / "spark.rejects.parquet"), local_rejects)


def test_the_jvm_prefilter_flags_every_row_the_kernel_refuses(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given rows at every edge of the contract: its probes (in contract at the bounds), and
    # a probe pushed just past each bound, made fractional, or missing, as doubles and as
    # integers where the feature is an integer
    from ml.batch import load_version
    from ml.contract import probe_rows
    from ml.spark.scoring import suspects

    model = load_version(registry, ModelRef.parse(f"{NAME}/1"), tmp_path)
    probes = probe_rows(CONTRACT)
    edges = [probes]
    for j, feature in enumerate(CONTRACT.features):
        for change in (
            np.nextafter(feature.low, -np.inf),
            np.nextafter(feature.high, np.inf),
            feature.low - 1,
            feature.high + 1,
            np.nan,
            probes[0, j] + 0.5,
            np.inf,
        ):
            edges.append(probes[:1].copy())
            edges[-1][0, j] = change
    matrix = np.vstack(edges)
    refused = model.kernel.check(matrix).rows
    doubles = pd.DataFrame(matrix, columns=list(CONTRACT.names))
    finite = np.isfinite(matrix).all(axis=1) & (np.abs(np.nan_to_num(matrix)) < 2**62).all(axis=1)
    whole = finite & (matrix == np.floor(matrix)).all(axis=1)
    integers = doubles[whole].astype(np.int64)  # as an integer-typed Parquet file gives them
    for frame, rows in ((doubles, np.arange(len(matrix))), (integers, np.flatnonzero(whole))):
        df = spark_session.createDataFrame(frame.assign(row=rows))

        # When the JVM predicate flags rows
        flag = suspects(CONTRACT, df)
        assert flag is not None
        flagged = {r["row"] for r in df.filter(flag).select("row").collect()}

        # Then every row the kernel refuses is flagged, and no probe is
        assert set(rows[refused[rows]]) <= flagged
        assert not flagged & set(range(len(probes)))
    assert refused.sum() > 3 * len(CONTRACT.features)
    # and text columns are left to the kernel alone
    assert suspects(CONTRACT, df.select(*[df[n].cast("string") for n in CONTRACT.names])) is None


def test_a_failed_job_keeps_the_old_outputs_and_leaves_no_staging(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given outputs of an earlier run, and an input whose AGE column is not numeric
    ref = ModelRef.parse(f"{NAME}@production")
    good = tmp_path / "good.parquet"
    book(500).to_parquet(good, index=False)
    out = tmp_path / "scores.parquet"
    first = predict_on_spark(spark_session, registry, ref, str(good), str(out))
    before = read_dir(out)
    broken = book(500)
    broken["AGE"] = pd.Timestamp("2020-01-01")
    bad = tmp_path / "bad.parquet"
    broken.to_parquet(bad, index=False, coerce_timestamps="us")

    # When the job fails in the executors
    with pytest.raises(DataError, match=r"AGE of type timestamp.* is not numeric"):
        predict_on_spark(spark_session, registry, ref, str(bad), str(out))

    # Then the earlier outputs are intact and nothing is staged
    pd.testing.assert_frame_equal(read_dir(out), before)
    assert len(before) == first.scored
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


def test_score_dataframe_is_the_library_entry_point(
    spark_session: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    # Given a DataFrame a Spark job already holds, with a row column of its own
    from ml.batch import load_version

    data = book(2_000, seed=5)
    data.insert(0, "row", np.arange(len(data), dtype=np.int64) * 10)
    model = load_version(registry, ModelRef.parse(f"{NAME}/1"), tmp_path)

    # When it is scored through the library call
    scores, rejects = score_dataframe(spark_session.createDataFrame(data), model)
    got = scores.toPandas().sort_values("row", ignore_index=True)
    refused = rejects.toPandas()

    # Then its rows are kept, and each score is the booster's on the in-contract rows
    kept = ~data.index.isin(refused["row"] // 10)
    assert got["row"].tolist() == data.loc[kept, "row"].tolist()
    matrix = data.loc[kept, list(CONTRACT.names)].to_numpy(np.float32)
    assert np.array_equal(got["probability"].to_numpy(), model.score(matrix))
    assert len(refused) == int((~kept).sum()) > 0


def test_the_cli_runs_the_spark_engine_and_prints_the_summary(
    spark_session: SparkSession, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "book.parquet"
    book(1_000).to_parquet(source, index=False)
    monkeypatch.setenv("ML_TRACKING_URI", registry.tracking_uri)
    args = ["predict", "--model", f"{NAME}@production", "--input", str(source)]
    args += ["--output", str(tmp_path / "out.parquet"), "--engine", "spark"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 1_000
    assert summary["scored"] + summary["rejected"] == 1_000
    assert (tmp_path / "out.rejects.parquet" / "_SUCCESS").is_file()
    assert summary["contract"] == "logged"


def test_the_spark_submit_entry_point_prints_the_summary_or_one_error_line(
    spark_session: SparkSession,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ml.spark.scoring import main

    source = tmp_path / "book.parquet"
    book(500).to_parquet(source, index=False)
    monkeypatch.setenv("ML_TRACKING_URI", registry.tracking_uri)
    args = ["--model", f"{NAME}@production", "--output", str(tmp_path / "out.parquet")]

    assert main([*args, "--input", str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 500

    assert main([*args, "--input", str(tmp_path / "missing.parquet")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: data file not found")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("source", "fix"),
    [
        ("s3://book-bucket/2026-11/", "s3:// is EMR's own file system"),
        ("s3a://book-bucket/2026-11/", "s3a:// needs the hadoop-aws jars"),
    ],
)
def test_an_object_store_path_without_its_file_system_names_the_fix(
    spark_session: SparkSession, registry: Registry, tmp_path: Path, source: str, fix: str
) -> None:
    # Given a local session without hadoop-aws (this one), and an s3 input or output
    ref = ModelRef.parse(f"{NAME}@production")
    local = tmp_path / "book.parquet"
    book(100).to_parquet(local, index=False)

    # When it is read from, or written to
    with pytest.raises(DataError) as read:
        predict_on_spark(spark_session, registry, ref, source, str(tmp_path / "out.parquet"))
    with pytest.raises(ConfigError) as write:
        predict_on_spark(spark_session, registry, ref, str(local), f"{source}scores.parquet")

    # Then each error names the missing file system and the fix, in one line, no JVM stack
    for error in (str(read.value), str(write.value)):
        assert fix in error
        assert "hadoop-aws" in error
        assert "\n" not in error
        assert "at org.apache" not in error
    assert "No FileSystem for scheme" in str(read.value) or "S3AFileSystem" in str(read.value)
    assert not (tmp_path / "out.parquet").exists()
