"""`mlops features materialize`: a features file → snapshot N in Redis → checks → pointer switch.

1. take the feature set's writer lock, refuse a Redis whose eviction policy may drop keys;
2. N = INCR of the sequence; stream the file in chunks, each checked against the contract:
   refused rows (out of contract, text in a number column, a missing or malformed id, an id
   seen before) go to the rejects file with their reason, never to Redis; accepted rows are
   encoded (layout.py) and written with pipelined MSETs under snapshot N's prefix;
3. count check (SCAN counts the keys under the prefix: exactly the rows accepted) and sample
   check (a reservoir sample of accepted rows read back and compared bit for bit);
4. one MULTI switches the pointer to N; the snapshot that was current keeps its keys for the
   grace period (rollback).
A failure before the switch deletes snapshot N's keys and leaves the pointer where it was.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.atomic_output import AtomicOutputs
from ml.batch import TableSink, fetch_input
from ml.contract import ModelContract
from ml.errors import FeatureStoreError
from ml.feature_store import snapshots
from ml.feature_store.layout import Keys, SnapshotInfo, contract_id, decode_rows, encode_rows
from ml.feature_store.redis_adapter import SyncRedis, is_evicting
from ml.feature_store.source import Chunk, is_text_cell_error, read

if TYPE_CHECKING:
    import pyarrow as pa

SAMPLE_ROWS = 1000


@dataclass(frozen=True)
class MaterializeSummary:
    """What a materialize did (printed as JSON)."""

    feature_set: str
    snapshot: int
    previous: int | None
    switched: bool
    rows: int
    written: int
    rejected: int
    rejects: str
    contract_id: str
    data_version: str
    sampled: int
    seconds: float
    grace_s: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


class _Sample:
    """A uniform sample of accepted rows (smallest random priorities), for the read-back."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.priority = np.empty(0)
        self.ids: list[str] = []
        self.rows = np.empty((0, 0), dtype=np.float32)

    def offer(self, ids: list[str], rows: np.ndarray) -> None:
        if not ids:
            return
        priority = np.concatenate([self.priority, self.rng.random(len(ids))])
        all_ids = self.ids + ids
        all_rows = rows.astype(np.float32) if not self.ids else np.vstack([self.rows, rows])
        keep = np.argsort(priority, kind="stable")[: self.size]
        self.priority = priority[keep]
        self.ids = [all_ids[i] for i in keep.tolist()]
        self.rows = np.asarray(all_rows, dtype=np.float32)[keep]


def _rejects_schema(names: tuple[str, ...]) -> pa.Schema:
    import pyarrow as pa

    fields = [pa.field("row", pa.int64()), pa.field("id", pa.string())]
    fields.append(pa.field("reason", pa.string()))
    fields += [pa.field(n, pa.float64()) for n in names]
    return pa.schema(fields)


def _rejects_table(chunk: Chunk, names: tuple[str, ...], reasons: list[str]) -> pa.Table:
    import pyarrow as pa

    where = np.flatnonzero(chunk.bad)
    columns: dict[str, Any] = {
        "row": pa.array(where + chunk.first_row, pa.int64()),
        "id": pa.array([chunk.ids[i] for i in where.tolist()], pa.string()),
        "reason": pa.array(reasons, pa.string()),
    }
    for j, name in enumerate(names):
        columns[name] = pa.array(chunk.matrix[where, j], pa.float64())
    return pa.Table.from_pydict(columns, schema=_rejects_schema(names))


def materialize(
    r: SyncRedis,
    keys: Keys,
    source: str,
    contract: ModelContract,
    *,
    rejects: Path,
    id_column: str = "ID",
    data_version: str | None = None,
    grace_s: int = snapshots.DEFAULT_GRACE_S,
    max_rejected: float = 0.05,
    sample_rows: int = SAMPLE_ROWS,
) -> MaterializeSummary:
    """Write `source` as a new snapshot and make it current (see the module docstring).

    Args:
        r: the Redis client.
        keys: the feature set's key names.
        source: a CSV or Parquet file: a path, https:// URL or s3://bucket/key.
        contract: the contract every row must satisfy; its feature order is the vector order.
        rejects: where refused rows go (Parquet, or CSV for a .csv name), with their reason.
        id_column: the applicant id column.
        data_version: recorded with the snapshot (default: 16 hex digits of the file's sha256).
        grace_s: how long the snapshot that was current keeps its keys (rollback window).
        max_rejected: above this fraction of refused rows, nothing is switched.
        sample_rows: rows read back and compared after the write.

    Raises:
        FeatureStoreError: a check failed or the lock is held; the pointer did not move.
        FeatureStoreUnavailableError: Redis did not answer.
        DataError: the file cannot be read or lacks columns.
    """
    started = time.perf_counter()
    r.ping()
    policy = r.eviction_policy()
    if is_evicting(policy):
        raise FeatureStoreError(
            f"Redis evicts keys without a TTL (maxmemory-policy {policy}): a snapshot could lose "
            "vectors silently; set maxmemory-policy to noeviction or a volatile-* policy"
        )
    cid = contract_id(contract)
    names = contract.names
    with (
        AtomicOutputs([rejects]) as outputs,
        snapshots.writer_lock(r, keys, "materialize"),
        tempfile.TemporaryDirectory() as work,
    ):
        path, digest = fetch_input(source, Path(work))
        with r.mapped():
            snapshot = int(r.client.incr(keys.sequence))
        try:
            rows, written, rejected, sample = _write_all(
                r, keys, snapshot, path, contract, id_column, outputs.temporary(rejects),
                sample_rows, data_version or digest.result()[:16], cid,
            )  # fmt: skip
            outputs.commit()  # the rejects land even when a check below refuses the switch
            version = data_version or digest.result()[:16]
            if written == 0:
                raise FeatureStoreError(
                    f"no row of {rows} passed the contract (see {rejects}); nothing switched"
                )
            if rejected > max_rejected * rows:
                raise FeatureStoreError(
                    f"{rejected} of {rows} rows ({rejected / rows:.1%}) were refused, above "
                    f"--max-rejected {max_rejected:.1%} (see {rejects}); nothing switched"
                )
            info = SnapshotInfo(
                snapshot, names, cid, version, written, source,
                datetime.now(UTC).isoformat(timespec="seconds"), "checking",
            )  # fmt: skip
            with r.mapped():
                r.client.hset(keys.meta(snapshot), mapping=info.to_redis())  # type: ignore[arg-type]
            _check(r, keys, info, sample)
            previous = snapshots.switch(r, keys, snapshot)
        except BaseException:
            with contextlib.suppress(Exception):
                snapshots.discard(r, keys, snapshot)
            raise
        if previous is not None and previous != snapshot:
            try:
                snapshots.expire(r, keys, previous, grace_s)
            except FeatureStoreError as exc:
                # The switch is done: say so, so nobody materializes again for nothing.
                raise FeatureStoreError(
                    f"snapshot {snapshot} is current, but giving snapshot {previous} its grace "
                    f"period failed ({exc}); its keys (fs:{keys.namespace}:s:{previous}:*) "
                    "have no TTL: delete them once a rollback to it is no longer wanted"
                ) from exc
    return MaterializeSummary(
        feature_set=keys.namespace,
        snapshot=snapshot,
        previous=previous,
        switched=True,
        rows=rows,
        written=written,
        rejected=rejected,
        rejects=str(rejects),
        contract_id=cid,
        data_version=version,
        sampled=len(sample.ids),
        seconds=round(time.perf_counter() - started, 3),
        grace_s=grace_s,
    )


def _write_all(
    r: SyncRedis,
    keys: Keys,
    snapshot: int,
    path: Path,
    contract: ModelContract,
    id_column: str,
    rejects: Path,
    sample_rows: int,
    data_version: str,
    cid: str,
) -> tuple[int, int, int, _Sample]:
    """Stream, check, write; (rows, written, rejected, sample). A text cell restarts the pass
    with text columns: the same keys are written again, which MSET overwrites."""
    header = SnapshotInfo(snapshot, contract.names, cid, data_version, 0).header
    prefix = keys.vector_prefix(snapshot)
    for numeric in (True, False):
        sink = TableSink(rejects)
        seen: set[str] = set()
        sample = _Sample(sample_rows, seed=snapshot)
        rows = written = rejected = 0
        try:
            for chunk in read(path, contract, id_column, numeric=numeric):
                bad = chunk.bad.copy()
                duplicates: dict[int, str] = {}
                for i, ident in enumerate(chunk.ids):
                    if ident is None or bad[i]:
                        continue
                    if ident in seen:
                        bad[i] = True
                        duplicates[i] = f"id {ident} appears earlier in the file (first kept)"
                    else:
                        seen.add(ident)
                good = np.flatnonzero(~bad)
                ids = [chunk.ids[i] for i in good.tolist()]
                matrix = chunk.matrix[good]
                values = encode_rows(header, matrix)
                r.write_values([(prefix + i, v) for i, v in zip(ids, values, strict=True)])  # type: ignore[operator]
                sample.offer(ids, matrix)  # type: ignore[arg-type]
                if bad.any():
                    merged = Chunk(
                        chunk.first_row, chunk.ids, chunk.matrix, bad, chunk.violations,
                        chunk.not_numbers, {**chunk.id_problems, **duplicates},
                    )  # fmt: skip
                    sink.write(
                        _rejects_table(merged, contract.names, merged.reasons(contract.names)),
                        {"snapshot": str(snapshot)},
                    )
                    rejected += int(bad.sum())
                rows += len(chunk.ids)
                written += len(ids)
            sink.close(_rejects_schema(contract.names), {"snapshot": str(snapshot)})
            return rows, written, rejected, sample
        except BaseException as exc:
            sink.discard()
            if numeric and is_text_cell_error(exc):
                continue
            raise
    raise AssertionError("the text pass returns or raises")


def _check(r: SyncRedis, keys: Keys, info: SnapshotInfo, sample: _Sample) -> None:
    """Count and sample checks of a written snapshot; FeatureStoreError naming what differs."""
    counted = sum(len(page) for page in r.scan(keys.vector_prefix(info.snapshot)))
    if counted != info.rows:
        raise FeatureStoreError(
            f"snapshot {info.snapshot} holds {counted} vectors, {info.rows} were written "
            "(another writer, or keys evicted); nothing switched"
        )
    if not sample.ids:
        return
    prefix = keys.vector_prefix(info.snapshot)
    with r.mapped():
        values = r.client.mget([prefix + i for i in sample.ids])
    missing = [i for i, v in zip(sample.ids, values, strict=True) if v is None]
    if missing:
        raise FeatureStoreError(
            f"snapshot {info.snapshot}: ids {missing[:5]} were written but read back empty"
        )
    read_back = decode_rows(info.header, list(values), len(info.features))  # type: ignore[arg-type]
    if not np.array_equal(read_back, sample.rows, equal_nan=True):
        where = np.flatnonzero(~np.all((read_back == sample.rows) | np.isnan(sample.rows), axis=1))
        raise FeatureStoreError(
            f"snapshot {info.snapshot}: {len(where)} sampled vectors read back differ from the "
            f"file (first: id {sample.ids[int(where[0])]}); nothing switched"
        )
