"""Batch scoring (`mlops predict`): a CSV or Parquet file through a registered version, in chunks.

The version is loaded the way serving loads it: the same native booster path (serve/predictor.py,
with every core instead of one) and the same contract (`contract.json` of the version's run, or
the built-in one for a version from before contracts). The input streams through in chunks of
about CHUNK_ROWS rows, so memory stays flat whatever the file size: pyarrow parses the CSV (or
reads the Parquet row groups) on its own threads, the contract is one vectorised check per chunk,
and XGBoost scores the chunk's in-contract rows through its C API, releasing the GIL.

Outputs, written to temporaries beside their final names and renamed together at the end, after
checking that both can be written (ml.atomic_output: no half-written file, no new scores next to
old rejects, nothing left by SIGINT/SIGTERM):
- scores: `row` (0-based position in the input), the input's id column when it has one (`ID`),
  `probability`, `model_version`;
- rejects: rows out of contract or not numeric, with the `reason` and the values as read;
- a summary: rows, scored, rejected, seconds, model version, the input's sha256 (of its bytes).

Also the loader the promotion gates call: `load_version(...).self_test()` scores a version's
input example and the contract's probe rows (the loadable gate).

Over 500 lines because the stream (reader thread, chunk scoring, the two sinks and their atomic
commit) is one pipeline whose parts hand each other chunks; the contract check and the booster
call are the shared kernel (ml/scoring.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.contract import CONTRACT_FILE, ModelContract, Violations, probe_rows
from ml.errors import ConfigError, DataError, RegistryError
from ml.governance.reasons import ReasonCoder, logged_governance, reason_columns
from ml.scoring import Chunk, Scored, ScoringKernel, feature_chunk
from ml.version_contract import contract_for

if TYPE_CHECKING:
    import pyarrow as pa

    from ml.governance.config import Governance
    from ml.registry import Registry
    from serve.predictor import Predictor

# Chunks of ~33,000 rows: far above where XGBoost's per-call cost matters, and small enough that
# the chunks in flight (pyarrow's readahead, the one prefetched, the one scored) stay within
# ~350 MB beyond the imports. 16 MB CSV blocks and two prefetched chunks peaked at 1.3 GiB on
# 10 M rows, 4 MB and one at 0.6 GiB, for the same speed (docs/performance.md).
CHUNK_ROWS = 1 << 15  # Parquet rows per chunk
_CSV_BLOCK = 4 << 20  # bytes of CSV per parsed block (~33,000 rows of this data)
_HASH_CHUNK = 8 << 20
_REF = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """`NAME@ALIAS` or `NAME/VERSION`."""

    name: str
    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse a --model value; ConfigError with the accepted forms otherwise."""
        match = _REF.match(text.strip())
        if not match:
            raise ConfigError(
                f"--model {text!r}: expected NAME@ALIAS or NAME/VERSION, "
                "e.g. credit-risk@production or credit-risk/4"
            )
        version = match.group("version")
        return cls(match.group("name"), match.group("alias"), int(version) if version else None)

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


@dataclass(frozen=True)
class ScoringModel:
    """A version loaded for scoring: its predictor, its contract and its input example."""

    name: str
    version: int
    alias: str | None
    run_id: str | None
    contract: ModelContract  # in the model's column order
    contract_source: str
    predictor: Predictor
    example: np.ndarray  # the logged input example, float32, in column order
    governance: Governance | None = None  # reason texts logged with it (ml.governance.reasons)

    @functools.cached_property
    def kernel(self) -> ScoringKernel:
        """The scoring kernel (ml/scoring.py) every path scores this version through."""
        return ScoringKernel(self.contract, self.predictor)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for in-contract rows in column order (the kernel's `predict`)."""
        return self.kernel.predict(matrix)

    def self_test(self) -> None:
        """Score the input example and the contract's probe rows (every edge of every bound);
        RegistryError naming the failure unless all are probabilities.

        This is the loadable gate's check: a version whose booster is missing, corrupt or
        returns garbage is refused before anything is applied.
        """
        violations = self.contract.check_matrix(self.example)
        if violations:
            raise RegistryError(
                f"{self.name} v{self.version}: its input example breaks its contract: "
                f"{violations.first(1)[0].message()}"
            )
        for label, matrix in (("input example", self.example), ("probe rows", self.probes())):
            try:
                out = self.score(matrix)
            except Exception as exc:
                raise RegistryError(
                    f"{self.name} v{self.version}: scoring its {label} failed: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                ) from exc
            if out.shape != (len(matrix),) or not np.all((out >= 0) & (out <= 1)):
                raise RegistryError(
                    f"{self.name} v{self.version}: its {label} scored {out[:5]!r}..., "
                    "not probabilities"
                )

    def probes(self) -> np.ndarray:
        """The contract's probe rows as float32."""
        return probe_rows(self.contract).astype(np.float32)


def load_version(
    registry: Registry, ref: ModelRef, workdir: Path, nthread: int | None = None
) -> ScoringModel:
    """Resolve `ref`, download the version and its contract into `workdir`, build its predictor.

    Raises:
        RegistryError: the model, alias or version does not exist, a download failed, or the
            artifacts cannot be loaded (e.g. the booster file is missing).
        ContractError: the contract is malformed or does not fit the signature.
    """
    from serve.errors import ModelLoadError
    from serve.predictor import input_example, load_predictor, read_mlmodel, signature_of

    version, run_id = _resolve(registry, ref)
    model_dir = registry.download_version(ref.name, version, workdir / "model")
    contract_file = (
        registry.download_run_file(run_id, CONTRACT_FILE, workdir / "run") if run_id else None
    )
    try:
        mlmodel = read_mlmodel(model_dir)
        columns, _ = signature_of(mlmodel)
        contract, source = contract_for(contract_file, {c.name: c.type for c in columns})
        governance = logged_governance(contract_file)
        threads = nthread or len(os.sched_getaffinity(0))
        predictor, _ = load_predictor(model_dir, mlmodel, columns, threads, tree_walk=False)
        records = input_example(model_dir, mlmodel, columns)
        example = np.array([[float(r[c.name]) for c in columns] for r in records], dtype=np.float32)
    except (ModelLoadError, ConfigError) as exc:
        raise RegistryError(f"{ref} (version {version}) cannot be loaded: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"{ref} (version {version}): unreadable input example: {exc}") from exc
    return ScoringModel(
        name=ref.name,
        version=version,
        alias=ref.alias,
        run_id=run_id,
        contract=contract,
        contract_source=source,
        predictor=predictor,
        example=example,
        governance=governance,
    )


def _resolve(registry: Registry, ref: ModelRef) -> tuple[int, str | None]:
    if ref.alias is not None:
        found = registry.get_by_alias(ref.name, ref.alias)
        if found is None:
            state = registry.model_state(ref.name)
            if state is None:
                raise RegistryError(
                    f"model {ref.name} is not registered; train one with `mlops train`"
                )
            aliases = ", ".join(sorted(state.aliases)) or "none"
            raise RegistryError(
                f"{ref} is not set (aliases of {ref.name}: {aliases}); "
                "use one of them or NAME/VERSION"
            )
        return found.version, found.run_id
    assert ref.version is not None
    info = registry.get_version(ref.name, ref.version)
    if info is None:
        versions = [v.version for v in registry.versions(ref.name)]
        known = f"versions {versions[0]}..{versions[-1]}" if versions else "no versions"
        raise RegistryError(f"{ref} does not exist ({ref.name} has {known})")
    return info.version, info.run_id


@dataclass(frozen=True)
class Summary:
    """What `mlops predict` prints, as one JSON object."""

    model: str
    model_version: int
    contract: str
    input: str
    input_sha256: str | None  # of the input's bytes; None when Spark reads a directory or URI
    output: str
    rejects: str
    rows: int
    scored: int
    rejected: int
    seconds: float  # the whole command after start-up: download, load, read, check, score, write
    rows_per_second: float
    scoring_seconds: float  # reading, checking, scoring and writing the rows (I/O included)

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self))


def predict(
    registry: Registry,
    ref: ModelRef,
    source: str,
    output: Path,
    rejects: Path | None = None,
    id_column: str = "ID",
    nthread: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    reasons: bool = False,
) -> Summary:
    """Score `source` (a path or s3:// URI, CSV or Parquet) with the version `ref` names.

    With `reasons`, every scored row also gets its reason codes (ml/governance/reasons.py):
    columns `reason_1..k` (feature) and `reason_1_text..` (the reviewed text), as /predict.

    Raises:
        ConfigError: bad --model form or output path.
        DataError: input missing, unreadable, or without the contract's columns.
        RegistryError: the model cannot be resolved or loaded.
    """
    from ml.atomic_output import AtomicOutputs, scratch_dir

    started = time.perf_counter()
    rejects = rejects or output.with_name(f"{_stem(output)}.rejects.parquet")
    for path in (output, rejects):
        if path.suffix not in (".parquet", ".csv"):
            raise ConfigError(f"{path}: write .parquet or .csv (got {path.suffix or 'no suffix'})")
    if output.resolve() == rejects.resolve():
        raise ConfigError(f"--output and --rejects are the same file ({output}); name two files")
    with AtomicOutputs([output, rejects]) as outputs:
        work: Path | None = None
        try:
            # Downloads go here, not beside the outputs: named by pid, so that what a SIGKILL
            # leaves is removed by the next run.
            work = scratch_dir(Path(tempfile.gettempdir()), prefix="mlops-predict-")
            local, digest = fetch_input(source, work)
            model = load_version(registry, ref, work, nthread)
            coder = _reason_coder(model) if reasons else None
            streaming = time.perf_counter()
            counts = _score_file(
                model,
                local,
                outputs.temporary(output),
                outputs.temporary(rejects),
                id_column,
                chunk_rows,
                coder,
            )
            scoring = time.perf_counter() - streaming
            sha = digest.result()
            outputs.commit()
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - started
    rows, rejected = counts
    return Summary(
        model=ref.name,
        model_version=model.version,
        contract=model.contract_source,
        input=source,
        input_sha256=sha,
        output=str(output),
        rejects=str(rejects),
        rows=rows,
        scored=rows - rejected,
        rejected=rejected,
        seconds=round(seconds, 3),
        rows_per_second=round(rows / seconds, 1) if seconds else 0.0,
        scoring_seconds=round(scoring, 3),
    )


def _reason_coder(model: ScoringModel) -> ReasonCoder:
    """The reason coder of a loaded version; ConfigError when it has no booster to explain."""
    from ml.governance.reasons import coder_for, governance_for

    governance = governance_for(model.governance, f"{model.name} v{model.version}")
    coder = coder_for(model.predictor, model.contract.names, governance)
    if coder is None:
        raise ConfigError(
            f"{model.name} v{model.version} is not a native booster: --reasons needs XGBoost's "
            "exact contributions"
        )
    return coder


def _stem(path: Path) -> str:
    return path.name.removesuffix(path.suffix)


class _Digest:
    """sha256 of a file computed on a thread while the scoring runs (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        self._value: str | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        sha = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                while block := fh.read(_HASH_CHUNK):
                    sha.update(block)
        except OSError as exc:
            self._error = exc
            return
        self._value = sha.hexdigest()

    def result(self) -> str:
        self._thread.join()
        if self._value is None:
            raise DataError(f"cannot read the input to checksum it: {self._error}")
        return self._value


def fetch_input(source: str, work: Path) -> tuple[Path, _Digest]:
    """A local path for `source` (ml.data.fetch: a path, https:// or s3://, downloaded into
    `work`, so memory stays flat) and its checksum, computed on a thread meanwhile."""
    from ml.data import check_gzip, fetch

    try:
        path = fetch(source, work)
        check_gzip(path, source)
    except DataError as exc:
        raise DataError(
            f"{exc}; --input takes a CSV or Parquet file: a path, https:// URL or s3://bucket/key"
        ) from exc
    return path, _Digest(path)


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def read_batches(
    path: Path, names: tuple[str, ...], id_column: str, chunk_rows: int, numeric: bool
) -> tuple[Iterator[pa.RecordBatch], bool]:
    """Record batches of the feature columns (and the id column when present), and whether the
    id column is there. `numeric=False` reads CSV features as text (see `_score_file`)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if _is_parquet(path):
            parquet = pq.ParquetFile(path)
            columns = parquet.schema_arrow.names
            require_columns(path, names, columns)
            has_id = id_column in columns and id_column not in names
            wanted = [*names, id_column] if has_id else list(names)
            return parquet.iter_batches(batch_size=chunk_rows, columns=wanted), has_id
        header = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16)).schema
        require_columns(path, names, header.names)
        has_id = id_column in header.names and id_column not in names
        wanted = [*names, id_column] if has_id else list(names)
        types = (
            {n: pa.float64() for n in names}
            if numeric
            else {n: pa.string() for n in wanted}  # the id too: it may be what failed
        )
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK, use_threads=True),
            convert_options=pcsv.ConvertOptions(column_types=types, include_columns=wanted),
        )
        return iter(reader), has_id
    except (pa.ArrowInvalid, OSError) as exc:
        if numeric and "conversion error" in str(exc).lower():
            raise  # a cell that is not a number: `_score_file` reads the features as text
        raise DataError(
            f"cannot read {path.name} as CSV or Parquet: {str(exc).splitlines()[0]}"
        ) from exc


def require_columns(path: Path, names: tuple[str, ...], columns: list[str]) -> None:
    """DataError naming the contract's columns the input lacks, and the fix."""
    missing = [n for n in names if n not in columns]
    if len(missing) > 3:
        raise DataError(
            f"{path.name} lacks {len(missing)} of the {len(names)} columns the model's contract "
            f"needs (e.g. {', '.join(missing[:3])}): is it the right file, with a header row?"
        )
    if missing:
        raise DataError(
            f"{path.name} lacks columns {missing} that the model's contract needs; "
            "add them to the file (names as in the contract, case-sensitive)"
        )


class TableSink:
    """A Parquet or CSV writer to a temporary file (ml.atomic_output renames it into place)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table, metadata: dict[str, str]) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        from ml.atomic_output import write_errors

        with write_errors(self.path):
            if self._writer is None:
                self._schema = table.schema.with_metadata(metadata)
                if self.path.suffix == ".csv":
                    self._writer = pcsv.CSVWriter(str(self.path), self._schema)
                else:
                    self._writer = pq.ParquetWriter(str(self.path), self._schema)
            self._writer.write_table(table.replace_schema_metadata(metadata))

    def close(self, empty: pa.Schema, metadata: dict[str, str]) -> None:
        """Finish the file; an input with no rows (or none rejected) still gets one."""
        from ml.atomic_output import write_errors

        if self._writer is None:
            self.write(empty.empty_table(), metadata)
        with write_errors(self.path):
            self._writer.close()

    def discard(self) -> None:
        if self._writer is not None:
            # Already failing: the temporary goes with its staging folder either way.
            with contextlib.suppress(Exception):
                self._writer.close()


def _score_file(
    model: ScoringModel,
    path: Path,
    output: Path,
    rejects: Path,
    id_column: str,
    chunk_rows: int,
    coder: ReasonCoder | None = None,
) -> tuple[int, int]:
    """Stream, check, score and write; returns (rows, rejected).

    CSV feature columns are read as numbers; if a cell is not one, pyarrow stops the stream, and
    the file is read again with the features as text, so that only the rows with such cells are
    rejected (a slower path, taken only for such files).
    """
    import pyarrow as pa

    for numeric in (True, False):
        try:
            return _score_stream(
                model, path, output, rejects, id_column, chunk_rows, numeric, coder
            )
        except pa.ArrowInvalid as exc:
            if not (numeric and "conversion error" in str(exc).lower()):
                raise DataError(f"cannot read {path.name}: {str(exc).splitlines()[0]}") from exc
    raise AssertionError("the text pass raises or returns")


def _score_stream(
    model: ScoringModel,
    path: Path,
    output: Path,
    rejects: Path,
    id_column: str,
    chunk_rows: int,
    numeric: bool,
    coder: ReasonCoder | None = None,
) -> tuple[int, int]:
    import pyarrow as pa

    names = model.contract.names
    batches, has_id = read_batches(path, names, id_column, chunk_rows, numeric)
    metadata = {
        "model": model.name,
        "model_version": str(model.version),
        "contract": model.contract_source,
    }
    scores, refused = TableSink(output), TableSink(rejects)
    rows = rejected = 0
    id_type: pa.DataType = pa.int64()

    kernel = model.kernel

    def prepared() -> Iterator[tuple[pa.RecordBatch, Chunk, Violations]]:
        for batch in batches:
            if batch.num_rows:
                chunk = feature_chunk(batch, names)
                yield batch, chunk, kernel.check(chunk.matrix)

    try:
        # The next chunk is read, converted and checked on a thread while XGBoost scores this
        # one (it releases the GIL): reading and checking hide behind the scoring.
        for batch, chunk, violations in _prefetch(prepared(), depth=1):
            n = batch.num_rows
            scored = kernel.score(chunk, violations)
            if has_id:
                id_type = batch.column(id_column).type
            table = scores_table(rows, batch, scored, has_id, id_column, model.version)
            if coder is not None:
                kept = chunk.matrix if scored.accepted.all() else chunk.matrix[scored.accepted]
                table = reason_columns(table, coder, kept, scored.probabilities)
            scores.write(table, metadata)
            if not scored.accepted.all():
                refused_rows = rejects_table(rows, batch, scored, has_id, id_column, chunk)
                refused.write(refused_rows, metadata)
                rejected += int(scored.rejected.sum())
            rows += n
        empty_ids = pa.array([], id_type) if has_id else None
        empty = scores_columns(np.array([], np.int64), empty_ids, id_column, np.array([]), 0)
        if coder is not None:
            empty = reason_columns(empty, coder, np.empty((0, len(names))), np.empty(0))
        scores.close(empty.schema, metadata)
        refused.close(rejects_schema(names, has_id, id_column, id_type), metadata)
    except BaseException:
        scores.discard()
        refused.discard()
        raise
    return rows, rejected


_DONE = object()


def _prefetch(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """`items`, produced on a thread up to `depth` ahead (memory: `depth` chunks). An exception
    in the producer is raised here, in the consumer; a consumer that stops early stops it."""
    import queue

    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)

    thread = threading.Thread(target=produce, name="batch-reader", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def scores_table(
    first_row: int,
    batch: pa.RecordBatch,
    scored: Scored,
    has_id: bool,
    id_column: str,
    version: int,
) -> pa.Table:
    """The scores of a batch whose first row is input row `first_row`: `row`, the id column
    (when the input has one), `probability`, `model_version`, for the rows in contract."""
    import pyarrow as pa

    good = scored.accepted
    row_ids = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
    ids = batch.column(id_column) if has_id else None
    if not good.all():
        row_ids = row_ids[good]
        ids = ids.filter(pa.array(good)) if ids is not None else None
    return scores_columns(row_ids, ids, id_column, scored.probabilities, version)


def scores_columns(
    row_ids: np.ndarray,
    ids: pa.Array | None,
    id_column: str,
    probabilities: np.ndarray,
    version: int,
) -> pa.Table:
    """The scores table from its columns (ml/batch.py and ml/spark/scoring.py write the same)."""
    import pyarrow as pa

    columns: dict[str, Any] = {"row": pa.array(row_ids, pa.int64())}
    if ids is not None:
        columns[id_column] = ids
    columns["probability"] = pa.array(probabilities, pa.float64())
    columns["model_version"] = pa.array(np.full(len(row_ids), version, dtype=np.int64))
    return pa.table(columns)


def rejects_schema(
    names: tuple[str, ...], has_id: bool, id_column: str, id_type: pa.DataType
) -> pa.Schema:
    import pyarrow as pa

    fields = [pa.field("row", pa.int64())]
    if has_id:
        fields.append(pa.field(id_column, id_type))
    fields.append(pa.field("reason", pa.string()))
    fields += [pa.field(n, pa.float64()) for n in names]
    return pa.schema(fields)


def rejects_table(
    first_row: int,
    batch: pa.RecordBatch,
    scored: Scored,
    has_id: bool,
    id_column: str,
    chunk: Chunk,
) -> pa.Table:
    """The rejected rows of a batch whose first row is input row `first_row`: position, id,
    every reason, and the values as read (NaN for none)."""
    import pyarrow as pa

    where = np.flatnonzero(scored.rejected)
    violations = scored.violations
    found = violations.by_row(where)
    names = violations.contract.names
    reasons = []
    for i in where.tolist():
        texts = {j: str(raw[i]) for j, raw in chunk.not_numbers.items() if raw[i] is not None}
        parts = [f"{names[j]}: {text[:40]!r} is not a number" for j, text in texts.items()]
        parts += [v.message() for v in found.get(i, []) if names.index(v.feature.name) not in texts]
        reasons.append("; ".join(parts))
    columns: dict[str, Any] = {"row": pa.array(where + first_row, pa.int64())}
    if has_id:
        columns[id_column] = batch.column(id_column).take(pa.array(where))
    columns["reason"] = pa.array(reasons, pa.string())
    for j, name in enumerate(names):
        columns[name] = pa.array(chunk.matrix[where, j], pa.float64())
    return pa.table(columns)
