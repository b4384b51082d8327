"""The skew check: for a sample of applicants, the vector the service would read now against the
row of the training or validation file it was materialised from.

The served vector is read exactly as `/predict/by-id` reads it (the same script, pointer and
vectors in one call); the file's row is cast to float32, as serving casts every input. For the
same data version they must be bit-for-bit equal: any difference is skew (a materialize from
another file, a changed transformation, a corrupted key). A snapshot recorded under another data
version is refused before comparing: equality would mean nothing there.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.batch import fetch_input
from ml.contract import ModelContract
from ml.errors import FeatureSkewError, FeatureStoreError
from ml.feature_store import snapshots
from ml.feature_store.layout import Keys, LayoutError, decode_rows
from ml.feature_store.redis_adapter import SyncRedis
from ml.feature_store.source import is_text_cell_error, read

MAX_LISTED = 10


@dataclass(frozen=True)
class SkewReport:
    """What the check compared and found."""

    feature_set: str
    snapshot: int
    data_version: str
    sampled: int
    equal: int
    missing: list[str] = field(default_factory=list)
    differing: list[dict[str, Any]] = field(default_factory=list)
    differing_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and self.differing_count == 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2)


def fetch(r: SyncRedis, keys: Keys, ids: list[str]) -> tuple[int, list[bytes | None]]:
    """(current snapshot, raw value or None per id), as serving reads them."""
    answer = r.read(keys.snapshot_root, keys.pointer, ids)
    if not answer or answer[0] in (None, False):
        raise FeatureStoreError(f"feature set {keys.namespace!r} has no current snapshot")
    return int(answer[0]), [v if v else None for v in answer[1:]]


def check(
    r: SyncRedis,
    keys: Keys,
    source: str,
    contract: ModelContract,
    *,
    id_column: str = "ID",
    sample: int = 1000,
    seed: int = 0,
    data_version: str | None = None,
) -> SkewReport:
    """Compare `sample` in-contract rows of `source` with their served vectors.

    Raises:
        FeatureSkewError: the current snapshot was materialised from another data version.
        FeatureStoreError: no current snapshot, or its record cannot be read.
    """
    current = snapshots.current_snapshot(r, keys)
    if current is None:
        raise FeatureStoreError(f"feature set {keys.namespace!r} has no current snapshot")
    meta = snapshots.read_meta(r, keys, current)
    if meta is None:
        raise FeatureStoreError(f"snapshot {current} has no record (expired?)")
    with tempfile.TemporaryDirectory() as work:
        path, digest = fetch_input(source, Path(work))
        version = data_version or digest.result()[:16]
        if version != meta.data_version:
            raise FeatureSkewError(
                f"snapshot {current} was materialised from data version {meta.data_version}, "
                f"{source} is {version}: compare against the file it came from (or pass its "
                "--data-version)"
            )
        ids, rows = _sample_rows(path, contract, id_column, sample, seed)
    order = [contract.names.index(n) for n in meta.features]
    expected = rows[:, order].astype(np.float32)
    snapshot, values = fetch(r, keys, ids)
    present = [i for i, v in enumerate(values) if v is not None]
    missing = [ids[i] for i, v in enumerate(values) if v is None]
    try:
        served = decode_rows(meta.header, [values[i] for i in present], len(meta.features))  # type: ignore[misc]
    except LayoutError as exc:
        raise FeatureSkewError(f"snapshot {snapshot}: {exc}") from exc
    wanted = expected[present]
    same = (served == wanted) | (np.isnan(served) & np.isnan(wanted))
    differing = []
    for row in np.flatnonzero(~same.all(axis=1)).tolist():
        cols = np.flatnonzero(~same[row]).tolist()
        differing.append(
            {
                "id": ids[present[row]],
                "features": {
                    meta.features[c]: {
                        "served": float(served[row, c]),
                        "source": float(wanted[row, c]),
                    }
                    for c in cols[:5]
                },
            }
        )
    return SkewReport(
        feature_set=keys.namespace,
        snapshot=snapshot,
        data_version=meta.data_version,
        sampled=len(ids),
        equal=len(present) - len(differing),
        missing=missing[:MAX_LISTED],
        differing=differing[:MAX_LISTED],
        differing_count=len(differing),
    )


def _sample_rows(
    path: Path, contract: ModelContract, id_column: str, size: int, seed: int
) -> tuple[list[str], np.ndarray]:
    """A uniform sample of the file's in-contract rows with a valid, first-seen id."""
    rng = np.random.default_rng(seed)
    for numeric in (True, False):
        priority = np.empty(0)
        ids: list[str] = []
        rows = np.empty((0, len(contract.names)))
        seen: set[str] = set()
        try:
            for chunk in read(path, contract, id_column, numeric=numeric):
                good = []
                for i, ident in enumerate(chunk.ids):
                    if ident is not None and not chunk.bad[i] and ident not in seen:
                        seen.add(ident)
                        good.append(i)
                priority = np.concatenate([priority, rng.random(len(good))])
                ids = ids + [chunk.ids[i] for i in good]  # type: ignore[misc]
                rows = np.vstack([rows, chunk.matrix[good]])
                keep = np.argsort(priority, kind="stable")[:size]
                priority, rows = priority[keep], rows[keep]
                ids = [ids[i] for i in keep.tolist()]
            return ids, rows
        except Exception as exc:
            if numeric and is_text_cell_error(exc):
                continue
            raise
    raise AssertionError("the text pass returns or raises")
