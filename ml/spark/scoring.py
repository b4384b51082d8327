"""Batch scoring on Spark: `mlops predict --engine spark`, and the job spark-submit runs.

The same kernel as the local engine (ml/scoring.py) on each Arrow batch of a partition
(`mapInArrow`), with the version's booster broadcast once to the executors as its file bytes:
the same contract, the same float32 matrix, the same booster, so the probabilities are bitwise
the local engine's. The outputs have the local engine's columns (`row`, the id column,
`probability`, `model_version`; rejects with `row`, id, `reason` and the values as read), as
directories of part files (Spark's form), and the summary is the same JSON.

- `row` is the position in the input, as the local engine numbers it: files in path order, rows
  in file order. For Parquet it is computed in the JVM from the reader's row index
  (`_metadata.row_index`) plus the rows of the files before (nothing for one file; a light
  metadata-only count per file for several), so the input is scanned once for the scores. A
  CSV split has no row index: a first light pass counts the rows of each file split
  (`_metadata.file_path`, `file_block_start`) and each task numbers its rows from its offset.
- The rejects are a second pass, but only over the rows the contract's bounds flag, in the JVM:
  the contract as a Spark predicate (missing, below/above a bound, not an integer, not a code)
  sends only those rows to Python, where the kernel screens them exactly (the predicate flags a
  superset: numeric inputs only; text (CSV) columns send every row). One mapInArrow has one
  output schema; caching the scored rows for a second write would cost more memory than
  re-reading the features in the JVM.
- XGBoost runs `spark.task.cpus` threads per task (one by default: a task per core).
- Atomic: both outputs are written under a staging directory beside the output and renamed into
  place only when both jobs succeeded (Hadoop FileSystem renames: atomic on HDFS and local
  disks; on S3 a rename is a copy, so a reader should wait for `_SUCCESS`); a failed or
  interrupted run removes its staging directory and leaves the old outputs as they were.

Run as a job: `spark-submit ml/spark/scoring.py --model NAME@ALIAS --input s3://... --output
s3://...`, with ML_TRACKING_URI pointing at the registry (docs/serving.md, on Spark).

Just over 500 lines: the row numbering, the two passes and the staged commit are one job and are
read together; the kernel they share is ml/scoring.py.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from ml.batch import (
    ModelRef,
    ScoringModel,
    Summary,
    load_version,
    rejects_schema,
    rejects_table,
    require_columns,
    scores_columns,
)
from ml.contract import ModelContract
from ml.errors import ConfigError, DataError, MlopsError
from ml.scoring import Scored, ScoringKernel, feature_chunk

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from ml.registry import Registry

_FILE = "_file"  # the input file of a row, from Spark's hidden `_metadata` column
_BLOCK = "_block"  # the start of its file split
_POSITION = "_position"  # `read_input`'s Parquet row position, computed in the JVM
_ROW = "row"


@dataclass(frozen=True)
class BroadcastModel:
    """What every executor gets once: the booster file's bytes, the contract, the version."""

    name: str
    version: int
    contract: ModelContract
    booster: bytes

    @classmethod
    def of(cls, model: ScoringModel) -> BroadcastModel:
        """The broadcast form of a version loaded for scoring (a native booster only)."""
        booster = getattr(model.predictor, "booster", None)
        if booster is None:
            raise ConfigError(
                f"{model.name} v{model.version} is not a native XGBoost booster: the Spark "
                "engine scores boosters only; use --engine local"
            )
        return cls(model.name, model.version, model.contract, bytes(booster.save_raw("ubj")))


# One kernel per executor process and version: a Python worker is reused across tasks.
_KERNELS: dict[tuple[str, int, int, int], ScoringKernel] = {}


def _kernel(model: BroadcastModel, nthread: int = 1) -> ScoringKernel:
    from serve.predictor import BoosterPredictor

    key = (model.name, model.version, hash(model.booster), nthread)
    if key not in _KERNELS:
        # The task's cores (spark.task.cpus): Spark runs that many tasks fewer per executor.
        predictor = BoosterPredictor(model.booster, nthread=nthread, tree_walk=False)
        _KERNELS[key] = ScoringKernel(model.contract, predictor)
    return _KERNELS[key]


def task_cpus(spark: SparkSession) -> int:
    """The cores Spark gives each task (`spark.task.cpus`, 1 by default): XGBoost's threads."""
    return max(1, int(spark.sparkContext.getConf().get("spark.task.cpus", "1") or 1))


_INTEGERS = ("byte", "short", "integer", "long")
_FLOATS = ("float", "double")


def suspects(contract: ModelContract, frame: DataFrame) -> Any | None:
    """A Spark predicate true for every row the contract may refuse, or None when the feature
    columns are not all plain numbers (text, decimals: the kernel alone decides).

    It flags a superset of what the kernel rejects (a missing optional value is flagged too):
    the rows it does not flag are in contract by the same float64 comparisons as
    `ModelContract.check_matrix`; the flagged ones go to the kernel, which gives the verdict
    and the reasons. Kept small and typed (no casts on integer columns; NaN fails `> high` in
    Spark's ordering): a larger expression falls out of the JIT and costs more than the rows.
    """
    import math

    from pyspark.sql import functions as sf

    types = {f.name: f.dataType.typeName() for f in frame.schema.fields}
    if any(types.get(f.name) not in (*_INTEGERS, *_FLOATS) for f in contract.features):
        return None
    largest = float(np.finfo(np.float64).max)  # infinity is never an input (the contract's rule)
    flag = sf.lit(False)
    for feature in contract.features:
        column = sf.col(feature.name)
        low, high = max(feature.low, -largest), min(feature.high, largest)
        if types[feature.name] in _INTEGERS:  # exact integers: compare with integer bounds
            bad = column.isNull()
            if low > -largest:
                bad |= column < math.ceil(low)
            if high < largest:
                bad |= column > math.floor(high)
        else:
            bad = column.isNull() | (column < low) | (column > high)  # NaN sorts above high
            if feature.dtype == "int":
                bad |= column != sf.floor(column)
        if feature.codes is not None and not feature.contiguous_codes:
            bad |= ~column.isin(list(feature.codes))
        flag |= bad
    return flag


def score_dataframe(
    df: DataFrame, model: ScoringModel | BroadcastModel, id_column: str = "ID"
) -> tuple[DataFrame, DataFrame]:
    """The scores and the rejects of a DataFrame, as two lazy DataFrames.

    `df` holds the contract's feature columns (numbers, or text as read from CSV), optionally
    `id_column` (copied to every output row) and `row` (an int64 position, copied). From
    `read_input`, `row` is the position in the input, counted here by one light job over the
    file splits; otherwise, without a `row` column, the outputs have none. Each is computed by
    `mapInArrow` through the scoring kernel, with the booster broadcast once.

    Returns:
        (scores: row, id, probability, model_version; rejects: row, id, reason, the features).

    Raises:
        DataError: `df` lacks columns of the contract.
    """
    spark = df.sparkSession
    shipped = model if isinstance(model, BroadcastModel) else BroadcastModel.of(model)
    names = shipped.contract.names
    require_columns(Path("the DataFrame"), names, df.columns)
    has_id = id_column in df.columns and id_column not in names
    ids = [id_column] if has_id else []
    from_files = _FILE in df.columns  # `read_input`'s CSV: numbered from the file splits
    if _POSITION in df.columns:  # `read_input`'s Parquet: numbered in the JVM
        frame = df.select(*names, *ids, df[_POSITION].alias(_ROW))
        from_files = False
    elif _ROW in df.columns:
        frame = df.select(*names, *ids, _ROW)
    else:
        frame = df.select(*names, *ids, *([_FILE, _BLOCK] if from_files else []))
    has_row = _ROW in frame.columns
    numbered = has_row or from_files
    value = spark.sparkContext.broadcast(shipped)
    nthread = task_cpus(spark)
    id_type = _arrow_type(frame, id_column) if has_id else None
    scores_schema = _spark_schema(
        scores_columns(np.empty(0, np.int64), _empty(id_type), id_column, np.empty(0), 0).schema,
        numbered,
    )
    rejects_arrow = rejects_schema(names, has_id, id_column, id_type or _int64())
    offsets = _Offsets.of(frame) if from_files else None

    def scores(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        shipped = value.value
        kernel = _kernel(shipped, nthread)
        numbering = offsets.numbering() if offsets else None
        for batch in batches:
            chunk = feature_chunk(batch, names)
            scored = kernel.score(chunk)
            rows = _rows(batch, numbering, has_row)
            ids = batch.column(id_column) if has_id else None
            table = _scores(rows, ids, id_column, scored, shipped.version)
            yield from (table if numbered else table.drop([_ROW])).to_batches()

    def rejects(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        kernel = _kernel(value.value, nthread)
        numbering = offsets.numbering() if offsets else None
        for batch in batches:
            chunk = feature_chunk(batch, names)
            scored = kernel.screen(chunk)
            rows = _rows(batch, numbering, has_row)  # also when all pass: it advances
            if scored.accepted.all():
                continue
            table = rejects_table(0, batch, scored, has_id, id_column, chunk)
            table = table.set_column(0, _ROW, _pa().array(rows[scored.rejected], _int64()))
            yield from (table if numbered else table.drop([_ROW])).to_batches()

    # Split numbering needs every row of a split; otherwise only the flagged rows reach Python.
    flagged = None if from_files else suspects(shipped.contract, frame)
    screened = frame if flagged is None else frame.filter(flagged)
    return (
        frame.mapInArrow(scores, scores_schema),
        screened.mapInArrow(rejects, _spark_schema(rejects_arrow, numbered)),
    )


def _pa() -> Any:
    import pyarrow as pa

    return pa


def _int64() -> pa.DataType:
    return _pa().int64()


def _empty(id_type: pa.DataType | None) -> pa.Array | None:
    return _pa().array([], id_type) if id_type is not None else None


def _arrow_type(frame: DataFrame, column: str) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(frame.schema[column].dataType)


def _spark_schema(schema: pa.Schema, with_row: bool) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    spark_schema = from_arrow_schema(schema)
    return spark_schema if with_row else _drop_row(spark_schema)


def _drop_row(schema: Any) -> Any:
    from pyspark.sql.types import StructType

    return StructType([f for f in schema.fields if f.name != _ROW])


def _scores(
    rows: np.ndarray, ids: pa.Array | None, id_column: str, scored: Scored, version: int
) -> pa.Table:
    good = scored.accepted
    if not good.all():
        rows = rows[good]
        ids = ids.filter(_pa().array(good)) if ids is not None else None
    return scores_columns(rows, ids, id_column, scored.probabilities, version)


def _rows(batch: pa.RecordBatch, numbering: _Numbering | None, has_row: bool) -> np.ndarray:
    if has_row:
        return np.asarray(batch.column(_ROW).to_numpy(zero_copy_only=False), dtype=np.int64)
    if numbering is not None:
        return numbering.rows(batch)
    return np.zeros(batch.num_rows, dtype=np.int64)


@dataclass(frozen=True)
class _Offsets:
    """The first input row of every file split: files in path order, splits in file order."""

    starts: dict[tuple[str, int], int]

    @classmethod
    def of(cls, frame: DataFrame) -> _Offsets:
        counts = frame.groupBy(_FILE, _BLOCK).count().collect()
        starts: dict[tuple[str, int], int] = {}
        total = 0
        for file, block, count in sorted((r[0], r[1], r[2]) for r in counts):
            starts[(file, block)] = total
            total += count
        return cls(starts)

    def numbering(self) -> _Numbering:
        return _Numbering(self.starts)


class _Numbering:
    """Numbers a task's rows: a split's rows arrive in file order, in one task."""

    def __init__(self, starts: dict[tuple[str, int], int]) -> None:
        self._next = dict(starts)

    def rows(self, batch: pa.RecordBatch) -> np.ndarray:
        import pyarrow.compute as pc

        n = batch.num_rows
        files, blocks = batch.column(_FILE), batch.column(_BLOCK)
        out = np.empty(n, dtype=np.int64)
        # Runs of one split: where the file or the split start changes.
        change = np.zeros(n, dtype=bool)
        if n > 1:
            change[1:] = np.asarray(
                pc.or_(
                    pc.not_equal(files.slice(1), files.slice(0, n - 1)),
                    pc.not_equal(blocks.slice(1), blocks.slice(0, n - 1)),
                )
            )
        bounds = [0, *np.flatnonzero(change).tolist(), n]
        for start, end in itertools.pairwise(bounds):
            if start == end:
                continue
            key = (files[start].as_py(), blocks[start].as_py())
            first = self._next[key]
            out[start:end] = np.arange(first, first + end - start, dtype=np.int64)
            self._next[key] = first + end - start
        return out


def read_input(spark: SparkSession, source: str, input_format: str | None = None) -> DataFrame:
    """The input as a DataFrame with what numbers its rows: Parquet, each row's position
    (computed in the JVM); CSV, each row's file and split (numbered by the scoring tasks).

    `source`: a file or a directory of files, a local path or a URI Spark's Hadoop file systems
    read (s3:// on EMR; s3a:// with hadoop-aws elsewhere). CSV columns are read as text: the
    kernel converts them as the local engine's text path does, rejecting only cells that are
    not numbers.

    Raises:
        DataError: the path does not exist or cannot be read as CSV or Parquet.
    """
    location = _location(source)
    kind = input_format or _format_of(source)
    reader = spark.read
    if kind == "csv":
        reader = reader.option("header", "true").option("mode", "PERMISSIVE")
    try:
        df = reader.format(kind).load(location)
        if kind == "parquet":
            return _with_position(df)
        return df.select(
            "*",
            df["_metadata.file_path"].alias(_FILE),
            df["_metadata.file_block_start"].alias(_BLOCK),
        )
    except Exception as exc:  # AnalysisException, or the JVM's error on a bad file
        raise DataError(
            f"cannot read {source} as {kind}: {job_error(exc)}; "
            + (
                _no_filesystem(source)
                or "--input takes a CSV or Parquet file or directory: a path, or "
                "s3://bucket/prefix on EMR"
            )
        ) from exc


def _no_filesystem(uri: str) -> str | None:
    """The fix when `uri` names an object store this Spark has no file system for."""
    scheme = urlparse(uri).scheme
    if scheme in ("s3", "s3n"):
        return (
            "s3:// is EMR's own file system (EMRFS), there only: off EMR read "
            f"s3a://{uri.split('://', 1)[1]} with the hadoop-aws jars (--conf "
            "spark.jars.packages=org.apache.hadoop:hadoop-aws:3.3.4, the Hadoop of pyspark 3.5)"
        )
    if scheme == "s3a":
        return (
            "s3a:// needs the hadoop-aws jars on the classpath (--conf "
            "spark.jars.packages=org.apache.hadoop:hadoop-aws:3.3.4) and AWS credentials"
        )
    return None


def _with_position(df: DataFrame) -> DataFrame:
    """Parquet rows with their input position: the row's index in its file (Parquet's reader
    gives it), plus the rows of the files before it in path order. One file needs no count;
    several are counted per file from their metadata columns alone (no data page is read)."""
    from pyspark.sql import functions as sf

    index = df["_metadata.row_index"]
    if len(df.inputFiles()) <= 1:
        return df.select("*", index.alias(_POSITION))
    path = df["_metadata.file_path"]
    counts = sorted((r[0], r[1]) for r in df.groupBy(path.alias(_FILE)).count().collect())
    starts, total = [], 0
    for file, count in counts:
        starts.append((file, total))
        total += count
    offsets = df.sparkSession.createDataFrame(starts, f"{_FILE} string, _offset long")
    tagged = df.select("*", path.alias(_FILE), index.alias("_index"))
    joined = tagged.join(sf.broadcast(offsets), _FILE)
    return joined.select(
        *[joined[c] for c in df.columns], (joined["_offset"] + joined["_index"]).alias(_POSITION)
    )


def _location(source: str) -> str:
    if urlparse(source).scheme in ("", "file"):
        path = Path(urlparse(source).path if source.startswith("file:") else source)
        if not path.exists():
            raise DataError(f"data file not found: {path}")
        return path.resolve().as_uri()
    return source


def _format_of(source: str) -> str:
    path = urlparse(source).path.rstrip("/")
    if path.endswith((".csv", ".csv.gz")):
        return "csv"
    local = Path(path)
    if urlparse(source).scheme in ("", "file") and local.is_dir():
        files = [p for p in local.iterdir() if not p.name.startswith(("_", "."))]
        if files and all(p.name.endswith((".csv", ".csv.gz")) for p in files):
            return "csv"
    return "parquet"


class _Outputs:
    """Both outputs staged under one directory beside the output; renamed in on success."""

    def __init__(self, spark: SparkSession, output: str, rejects: str) -> None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        self._path = jvm.org.apache.hadoop.fs.Path
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        self.final = {"scores": self._path(output), "rejects": self._path(rejects)}
        parent = self.final["scores"].getParent()
        # Resolved when the outputs are named, before any work: a scheme this Spark has no file
        # system for fails here, with the fix.
        self.fs = _filesystem(parent, conf, output)
        _filesystem(self.final["rejects"].getParent(), conf, rejects)
        name = self.final["scores"].getName()
        self.staging = self._path(parent, f".{name}.staging-{uuid.uuid4().hex[:12]}")

    def temporary(self, which: str) -> str:
        return str(self._path(self.staging, which).toString())

    def commit(self) -> None:
        for which, final in self.final.items():
            if self.fs.exists(final):
                self.fs.delete(final, True)
            if not self.fs.rename(self._path(self.staging, which), final):
                raise DataError(f"cannot move the {which} into {final.toString()}")
        self.fs.delete(self.staging, True)

    def discard(self) -> None:
        self.fs.delete(self.staging, True)


def _filesystem(path: Any, conf: Any, named: str) -> Any:
    """The Hadoop file system of the JVM `path`; a ConfigError naming the fix when this Spark
    has none for its scheme."""
    try:
        return path.getFileSystem(conf)
    except Exception as exc:  # UnsupportedFileSystemException, ClassNotFoundException
        hint = _no_filesystem(named) or "name a path or a URI this Spark can write"
        raise ConfigError(f"cannot write {named}: {job_error(exc)}; {hint}") from None


def _uri(path: str) -> str:
    return Path(path).resolve().as_uri() if urlparse(path).scheme in ("", "file") else path


def _suffix(path: str) -> str:
    return Path(urlparse(path).path.rstrip("/")).suffix


def predict(
    spark: SparkSession,
    registry: Registry,
    ref: ModelRef,
    source: str,
    output: str,
    rejects: str | None = None,
    id_column: str = "ID",
    input_format: str | None = None,
) -> Summary:
    """Score `source` with the version `ref` names on Spark; the local engine's outputs, as
    directories of part files, and its summary.

    Raises:
        ConfigError: bad output names, or a version that is not a native booster.
        DataError: input missing, unreadable, or without the contract's columns.
        RegistryError: the model cannot be resolved or loaded.
    """
    import shutil
    import tempfile

    started = time.perf_counter()
    stem = output.rstrip("/").removesuffix(_suffix(output))
    rejects = rejects or f"{stem}.rejects.parquet"
    for path in (output, rejects):
        if _suffix(path) not in (".parquet", ".csv"):
            got = _suffix(path) or "no suffix"
            raise ConfigError(f"{path}: write .parquet or .csv (got {got})")
    if _uri(output) == _uri(rejects):
        raise ConfigError(f"--output and --rejects are the same ({output}); name two")
    outputs = _Outputs(spark, _uri(output), _uri(rejects))
    work = Path(tempfile.mkdtemp(prefix="mlops-spark-predict-"))
    try:
        model = load_version(registry, ref, work, nthread=1)
        shipped = BroadcastModel.of(model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    digest = _digest(source)
    df = read_input(spark, source, input_format)
    streaming = time.perf_counter()
    try:
        scores, refused = score_dataframe(df, shipped, id_column)
        _write(scores, outputs.temporary("scores"), _suffix(output))
        _write(refused, outputs.temporary("rejects"), _suffix(rejects))
        # Counted from what was written (Parquet: from the footers alone).
        scored = _count(spark, outputs.temporary("scores"), _suffix(output))
        rejected = _count(spark, outputs.temporary("rejects"), _suffix(rejects))
        outputs.commit()
    except BaseException as exc:
        outputs.discard()
        if isinstance(exc, Exception) and not isinstance(exc, MlopsError):
            raise DataError(f"the Spark job failed: {job_error(exc)}") from exc
        raise
    scoring = time.perf_counter() - streaming
    seconds = time.perf_counter() - started
    return Summary(
        model=ref.name,
        model_version=shipped.version,
        contract=model.contract_source,
        input=source,
        input_sha256=digest,
        output=output,
        rejects=rejects,
        rows=scored + rejected,
        scored=scored,
        rejected=rejected,
        seconds=round(seconds, 3),
        rows_per_second=round((scored + rejected) / seconds, 1) if seconds else 0.0,
        scoring_seconds=round(scoring, 3),
    )


def job_error(exc: BaseException) -> str:
    """The line of a failed job's error a user can act on: the worker's DataError (a column
    that is not numeric...) when there is one, else the first line, without the JVM stack."""
    text = str(exc)
    for line in text.splitlines():
        if "DataError: " in line:
            return line.split("DataError: ", 1)[1].strip()
    for line in text.splitlines():  # py4j: "An error occurred while calling ...", then the cause
        if line.startswith(": ") and "Exception: " in line:
            return line.rsplit("Exception: ", 1)[1].strip()[:300]
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first.strip()[:300]


def _count(spark: SparkSession, path: str, suffix: str) -> int:
    return int(spark.read.format(suffix[1:]).option("header", "true").load(path).count())


def _write(df: DataFrame, path: str, suffix: str) -> None:
    writer = df.write.mode("errorifexists")
    if suffix == ".csv":
        writer.option("header", "true").csv(path)
    else:
        writer.parquet(path)


def _digest(source: str) -> str | None:
    """sha256 of the input's bytes when it is one local file (as the local engine gives); None
    for a directory or a remote URI, whose bytes the driver does not read."""
    import hashlib

    if urlparse(source).scheme not in ("", "file"):
        return None
    path = Path(urlparse(source).path if source.startswith("file:") else source)
    if not path.is_file():
        return None
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(8 << 20):
            sha.update(block)
    return sha.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """`spark-submit ml/spark/scoring.py --model ... --input ... --output ...`: score, print the
    summary JSON; exit 0, or `mlops`' exit code with one line naming the problem (no
    traceback): 2 bad arguments, 3 bad input or a failed job, 4 registry."""
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.spark.session import spark_session

    parser = argparse.ArgumentParser(
        prog="ml/spark/scoring.py", description="Score a CSV/Parquet input on Spark."
    )
    parser.add_argument("--model", required=True, help="NAME@ALIAS or NAME/VERSION")
    parser.add_argument("--input", required=True, help="file or directory: path, s3://")
    parser.add_argument("--output", required=True, help="scores directory (.parquet or .csv)")
    parser.add_argument("--rejects", default=None, help="rejects directory")
    parser.add_argument("--id-column", default="ID")
    parser.add_argument("--input-format", choices=("parquet", "csv"), default=None)
    parser.add_argument(
        "--master", default="", help="Spark master; empty: from spark-submit (the default)"
    )
    args = parser.parse_args(argv)
    try:
        spark = spark_session(args.master, app_name="credit-risk-predict")
        registry = Registry(MLSettings().resolved_tracking_uri())
        summary = predict(
            spark,
            registry,
            ModelRef.parse(args.model),
            args.input,
            args.output,
            args.rejects,
            args.id_column,
            args.input_format,
        )
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(summary.to_json())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
