"""Key names and the binary vector format of the online feature store.

Keys of the feature set NS (the model name by default)::

    fs:NS:current          the current snapshot number (the pointer readers follow)
    fs:NS:history          snapshot numbers in the order they became current, newest first
    fs:NS:seq              the last snapshot number handed out
    fs:NS:lock             held by a running materialize or rollback (owner token, expiry)
    fs:NS:s:N:meta         snapshot N: contract id, data version, feature names, rows, state
    fs:NS:s:N:v:ID         applicant ID's vector in snapshot N

A vector is an 18-byte header (format, feature count, 8 bytes of the contract id, 8 of the data
version) and the features as little-endian float32 in the contract's order: what the served
booster reads (serving casts every request to float32), 110 bytes for the 23 credit features.
The header lets a reader refuse a vector that does not belong to the snapshot it read.

Only numpy and the standard library: the serve image imports this module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ml.contract import ModelContract

FORMAT = 1
HEADER = struct.Struct("<BB8s8s")
DTYPE = np.dtype("<f4")
# What an applicant id may hold: it becomes part of a key, so nothing that could address another
# key (no ':' or spaces) and nothing unbounded.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class LayoutError(ValueError):
    """A vector or a snapshot record does not have the expected form."""


def contract_id(contract: ModelContract) -> str:
    """A stable id of a contract: 16 hex digits of the sha256 of its canonical JSON (features in
    order with their bounds); two contracts share it only when they check the same things."""
    canonical = json.dumps(contract.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def tag(text: str) -> bytes:
    """The 8 bytes a vector header carries for a contract id or a data version."""
    return hashlib.sha256(text.encode()).digest()[:8]


@dataclass(frozen=True)
class Keys:
    """Key names of one feature set."""

    namespace: str

    def __post_init__(self) -> None:
        if not NAMESPACE_PATTERN.match(self.namespace):
            raise LayoutError(
                f"feature set name {self.namespace!r} must be 1-64 letters, digits, '_', '.' "
                "or '-', starting with a letter or digit"
            )

    @property
    def pointer(self) -> str:
        return f"fs:{self.namespace}:current"

    @property
    def history(self) -> str:
        return f"fs:{self.namespace}:history"

    @property
    def sequence(self) -> str:
        return f"fs:{self.namespace}:seq"

    @property
    def lock(self) -> str:
        return f"fs:{self.namespace}:lock"

    def meta(self, snapshot: int) -> str:
        return f"fs:{self.namespace}:s:{snapshot}:meta"

    def vector_prefix(self, snapshot: int) -> str:
        return f"fs:{self.namespace}:s:{snapshot}:v:"

    @property
    def snapshot_root(self) -> str:
        """What the read script appends `N:v:ID` to."""
        return f"fs:{self.namespace}:s:"


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot holds, as recorded in its meta key."""

    snapshot: int
    features: tuple[str, ...]
    contract_id: str
    data_version: str
    rows: int
    source: str = ""
    created_at: str = ""
    state: str = ""

    @functools.cached_property
    def header(self) -> bytes:
        """The header every vector of this snapshot starts with (two sha256: computed once per
        snapshot, not per read)."""
        return HEADER.pack(
            FORMAT, len(self.features), tag(self.contract_id), tag(self.data_version)
        )

    def to_redis(self) -> dict[str, str]:
        """The meta hash's fields."""
        return {
            "format": str(FORMAT),
            "features": json.dumps(list(self.features)),
            "contract_id": self.contract_id,
            "data_version": self.data_version,
            "rows": str(self.rows),
            "source": self.source,
            "created_at": self.created_at,
            "state": self.state,
        }

    @classmethod
    def from_redis(cls, snapshot: int, fields: dict[Any, Any]) -> SnapshotInfo:
        """Parse a meta hash (bytes or str keys); LayoutError when it is not one."""
        data = {_text(k): _text(v) for k, v in fields.items()}
        try:
            if int(data["format"]) != FORMAT:
                raise LayoutError(
                    f"snapshot {snapshot} has format {data['format']}, this code reads {FORMAT}"
                )
            return cls(
                snapshot=snapshot,
                features=tuple(json.loads(data["features"])),
                contract_id=data["contract_id"],
                data_version=data["data_version"],
                rows=int(data["rows"]),
                source=data.get("source", ""),
                created_at=data.get("created_at", ""),
                state=data.get("state", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, LayoutError):
                raise
            raise LayoutError(f"snapshot {snapshot}'s meta record is incomplete: {exc}") from exc

    def public(self) -> dict[str, Any]:
        """What /metadata and the CLI show."""
        return {
            "snapshot": self.snapshot,
            "contract_id": self.contract_id,
            "data_version": self.data_version,
            "rows": self.rows,
            "features": len(self.features),
            "source": self.source,
            "created_at": self.created_at,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def encode_rows(header: bytes, matrix: np.ndarray) -> list[bytes]:
    """One value per row of a (rows, features) matrix: the header and the row as float32."""
    body = np.ascontiguousarray(matrix, dtype=DTYPE)
    width = body.shape[1] * DTYPE.itemsize
    blob = body.tobytes()
    return [header + blob[i : i + width] for i in range(0, len(blob), width)]


def decode_rows(header: bytes, values: list[bytes], features: int) -> np.ndarray:
    """The (rows, features) float32 matrix of vectors read back; LayoutError naming the first
    value that is not a vector of this snapshot (wrong header or length)."""
    skip = len(header)
    size = skip + features * DTYPE.itemsize
    for i, value in enumerate(values):
        if len(value) != size or not value.startswith(header):
            raise LayoutError(
                f"value {i} is not a vector of this snapshot (length {len(value)}, expected "
                f"{size} with the snapshot's contract and data version in its header)"
            )
    if len(values) == 1:  # the common request: no copy
        return np.frombuffer(values[0], dtype=DTYPE, offset=skip).reshape(1, features)
    blob = b"".join(v[skip:] for v in values)
    return np.frombuffer(blob, dtype=DTYPE).reshape(len(values), features)
