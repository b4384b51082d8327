"""Snapshots of a feature set: which one is current, switching to another, rolling back, expiry.

One pointer key says which snapshot readers use; a switch is one MULTI that sets it and records
the history, after every key of the new snapshot is written and checked. The snapshot that was
current is not deleted: its keys get the grace period as TTL, so `rollback` can switch back to it
(removing its TTL first, and checking it still holds every vector) until they expire.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ml.errors import FeatureStoreError
from ml.feature_store.layout import Keys, LayoutError, SnapshotInfo
from ml.feature_store.redis_adapter import SyncRedis

DEFAULT_GRACE_S = 7 * 24 * 3600  # a week: long enough to notice a bad snapshot and roll back
HISTORY_KEPT = 100
LOCK_TTL_MS = 60 * 60 * 1000  # a crashed writer blocks the next one for an hour at most
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Status:
    """The feature set as Redis holds it now."""

    namespace: str
    current: SnapshotInfo | None
    history: list[int]
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_set": self.namespace,
            "current": self.current.public() if self.current else None,
            "history": self.history,
            "snapshots": self.snapshots,
        }


def current_snapshot(r: SyncRedis, keys: Keys) -> int | None:
    """The snapshot the pointer names, or None before the first switch."""
    with r.mapped():
        value = r.client.get(keys.pointer)
    return int(value) if value is not None else None


def read_meta(r: SyncRedis, keys: Keys, snapshot: int) -> SnapshotInfo | None:
    """Snapshot `snapshot`'s record, or None when it does not exist (never written, expired)."""
    with r.mapped():
        fields = r.client.hgetall(keys.meta(snapshot))
    if not fields:
        return None
    try:
        return SnapshotInfo.from_redis(snapshot, fields)
    except LayoutError as exc:
        raise FeatureStoreError(str(exc)) from exc


def history(r: SyncRedis, keys: Keys) -> list[int]:
    """Snapshot numbers in the order they became current, newest first."""
    with r.mapped():
        return [int(v) for v in r.client.lrange(keys.history, 0, -1)]


def status(r: SyncRedis, keys: Keys) -> Status:
    """Current snapshot, history, and the snapshots still held with their TTL."""
    now = current_snapshot(r, keys)
    seen = history(r, keys)
    listed = []
    for n in dict.fromkeys(seen):
        meta = read_meta(r, keys, n)
        if meta is None:
            listed.append({"snapshot": n, "state": "expired"})
            continue
        with r.mapped():
            ttl = int(r.client.ttl(keys.meta(n)))
        listed.append(
            {**meta.public(), "state": "current" if n == now else "kept", "expires_in_s": ttl}
        )
    return Status(keys.namespace, read_meta(r, keys, now) if now else None, seen, listed)


@contextlib.contextmanager
def writer_lock(r: SyncRedis, keys: Keys, what: str) -> Iterator[None]:
    """One writer at a time per feature set (a lease with an expiry, released by its owner)."""
    owner = f"{what}:{secrets.token_hex(8)}"
    with r.mapped():
        if not r.client.set(keys.lock, owner, nx=True, px=LOCK_TTL_MS):
            holder = r.client.get(keys.lock)
            ttl = r.client.pttl(keys.lock)
            raise FeatureStoreError(
                f"another writer holds feature set {keys.namespace!r} ({holder!r}, "
                f"{int(ttl) // 1000} s left): wait for it, or delete {keys.lock} if it crashed"
            )
    try:
        yield
    finally:
        with contextlib.suppress(FeatureStoreError), r.mapped():
            r.client.eval(_RELEASE, 1, keys.lock, owner)


def vector_keys(r: SyncRedis, keys: Keys, snapshot: int) -> list[Any]:
    """Every vector key of a snapshot (SCAN: never blocks Redis)."""
    found: list[Any] = []
    for page in r.scan(keys.vector_prefix(snapshot)):
        found.extend(page)
    return found


def expire(r: SyncRedis, keys: Keys, snapshot: int, grace_s: int) -> int:
    """Give every key of `snapshot` a TTL of `grace_s`; how many vectors it had."""
    vectors = vector_keys(r, keys, snapshot)
    r.set_ttl([keys.meta(snapshot)], grace_s * 1000)
    return r.set_ttl(vectors, grace_s * 1000)


def keep(r: SyncRedis, keys: Keys, snapshot: int) -> int:
    """Remove the TTL of every key of `snapshot`; how many vectors it still has."""
    vectors = vector_keys(r, keys, snapshot)
    r.set_ttl([keys.meta(snapshot)], 0)
    return r.set_ttl(vectors, 0)


def discard(r: SyncRedis, keys: Keys, snapshot: int) -> None:
    """Delete a snapshot that never became current (a failed materialize)."""
    r.delete([*vector_keys(r, keys, snapshot), keys.meta(snapshot)])


def switch(r: SyncRedis, keys: Keys, snapshot: int) -> int | None:
    """Make `snapshot` current in one MULTI (pointer, history, state); the previous one."""
    # WATCH: a pointer moved by another client between the read and EXEC fails the switch
    # (the adapter says so) instead of recording the wrong previous snapshot.
    with r.mapped(), r.client.pipeline() as pipe:
        pipe.watch(keys.pointer)
        previous = pipe.get(keys.pointer)
        pipe.multi()
        pipe.set(keys.pointer, snapshot)
        pipe.lpush(keys.history, snapshot)
        pipe.ltrim(keys.history, 0, HISTORY_KEPT - 1)
        pipe.hset(keys.meta(snapshot), "state", "current")
        if previous is not None and int(previous) != snapshot:
            pipe.hset(keys.meta(int(previous)), "state", "kept")
        pipe.execute()
    return int(previous) if previous is not None else None


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback switched from and to."""

    from_snapshot: int
    to_snapshot: int
    vectors: int
    grace_s: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_snapshot,
            "to": self.to_snapshot,
            "vectors": self.vectors,
            "expires_in_s": self.grace_s,
        }


def rollback(r: SyncRedis, keys: Keys, to: int | None, grace_s: int) -> RollbackResult:
    """Switch the pointer back to `to` (default: the snapshot current before this one).

    The target must still hold every vector its record counts: its TTL is removed first, then
    it is counted, and only then does the pointer move. The snapshot rolled back from keeps its
    keys for `grace_s`, so the rollback itself can be undone.
    """
    with writer_lock(r, keys, "rollback"):
        now = current_snapshot(r, keys)
        if now is None:
            raise FeatureStoreError(
                f"feature set {keys.namespace!r} has no current snapshot: nothing to roll back"
            )
        if to is None:
            earlier = [n for n in history(r, keys) if n != now]
            if not earlier:
                raise FeatureStoreError(
                    f"snapshot {now} is the only one {keys.namespace!r} has had current: "
                    "nothing to roll back to"
                )
            to = earlier[0]
        if to == now:
            raise FeatureStoreError(f"snapshot {to} is already current")
        meta = read_meta(r, keys, to)
        if meta is None:
            raise FeatureStoreError(
                f"snapshot {to} of {keys.namespace!r} no longer exists (its grace period "
                "ended, or it was never written): materialize its data again"
            )
        held = keep(r, keys, to)
        if held != meta.rows:
            expire(r, keys, to, grace_s)
            raise FeatureStoreError(
                f"snapshot {to} holds {held} of its {meta.rows} vectors (keys expired or were "
                f"evicted); the pointer stays on {now}: materialize its data again"
            )
        switch(r, keys, to)
        expire(r, keys, now, grace_s)
        return RollbackResult(now, to, held, grace_s)
