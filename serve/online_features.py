"""The online feature store as serving sees it: fetch applicants' vectors from the current
snapshot in one Redis round trip, and say whether Redis answers (for /health and /metrics).

Off unless SERVE_FEATURES_REDIS_URL is set; redis-py is imported only then (the `features`
extra), so a serve image without it still serves /predict. The read is one Lua call that takes
the pointer and the vectors together (ml/feature_store/redis_adapter.py): a request never mixes
two snapshots, and never sees one half written. A snapshot's record (feature names, contract id,
data version) is read once per snapshot and cached.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.errors import FeatureStoreError
from ml.feature_store.layout import Keys, LayoutError, SnapshotInfo, decode_rows
from serve.errors import FeatureStoreUnavailableError, UnknownIdError
from serve.redaction import one_line

if TYPE_CHECKING:
    from ml.feature_store.redis_adapter import AsyncRedis
    from serve.metrics import Metrics
    from serve.settings import ServeSettings

log = logging.getLogger("serve")
MAX_UNKNOWN_LISTED = 20


@dataclass(frozen=True)
class Fetched:
    """The vectors of one request: the snapshot they came from, one row per id, in its order."""

    snapshot: SnapshotInfo
    matrix: np.ndarray  # float32 (ids, snapshot features), snapshot feature order


class OnlineFeatures:
    """Reads vectors for `/predict/by-id`; tracks whether Redis answers."""

    def __init__(self, settings: ServeSettings, metrics: Metrics) -> None:
        assert settings.features_redis_url is not None
        import importlib.util

        if importlib.util.find_spec("redis") is None:
            raise RuntimeError(
                "SERVE_FEATURES_REDIS_URL is set but redis-py is not installed: install the "
                "`features` extra (the serve image has it)"
            )
        self.url = settings.features_redis_url
        self.keys = Keys(settings.features_set or settings.model_name)
        token = settings.features_redis_auth_token
        self._token = token.get_secret_value() if token is not None else None
        self._timeout = settings.features_timeout
        self.metrics = metrics
        # Bound once: a labels() lookup per request costs more than the increment.
        self._found = metrics.feature_lookups.labels("found")
        self._unknown = metrics.feature_lookups.labels("unknown")
        self._client: AsyncRedis | None = None
        self._meta: dict[int, SnapshotInfo] = {}
        self.current: SnapshotInfo | None = None
        self.error: str | None = "not contacted yet"

    def client(self) -> AsyncRedis:
        """The pooled client, created on the event loop that uses it."""
        if self._client is None:
            from ml.feature_store.redis_adapter import AsyncRedis

            self._client = AsyncRedis(self.url, self._token, self._timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _down(self, exc: Exception) -> FeatureStoreUnavailableError:
        message = one_line(exc)
        if self.error != message:
            log.warning("feature store unavailable: %s", message)
        self.error = message
        self.metrics.feature_store_up.set(0)
        return FeatureStoreUnavailableError(
            f"the feature store does not answer ({message}); /predict with the features still works"
        )

    def _up(self, snapshot: SnapshotInfo) -> None:
        if self.error is not None:
            log.info("feature store answers; snapshot %s current", snapshot.snapshot)
        self.error = None
        self.metrics.feature_store_up.set(1)
        if self.current is None or self.current.snapshot != snapshot.snapshot:
            self.current = snapshot
            self.metrics.set_feature_snapshot(self.keys.namespace, snapshot)

    async def _snapshot(self, number: int) -> SnapshotInfo:
        found = self._meta.get(number)
        if found is not None:
            return found
        fields = await self.client().hgetall(self.keys.meta(number))
        if not fields:
            raise FeatureStoreUnavailableError(
                f"snapshot {number} of {self.keys.namespace!r} has no record"
            )
        try:
            found = SnapshotInfo.from_redis(number, fields)
        except LayoutError as exc:
            raise FeatureStoreUnavailableError(str(exc)) from exc
        self._meta = {number: found, **dict(list(self._meta.items())[:3])}  # a few, newest first
        return found

    async def fetch(self, ids: list[str]) -> Fetched:
        """The vectors of `ids` from the current snapshot.

        Raises:
            FeatureStoreUnavailableError: Redis did not answer, or no snapshot is current (503).
            UnknownIdError: ids the snapshot does not hold (404, naming the snapshot).
        """
        started = time.perf_counter()
        try:
            answer = await self.client().read(self.keys.snapshot_root, self.keys.pointer, ids)
            if not answer or not answer[0]:
                raise FeatureStoreUnavailableError(
                    f"feature set {self.keys.namespace!r} has no current snapshot: run "
                    "`mlops features materialize`"
                )
            snapshot = await self._snapshot(int(answer[0]))
        except FeatureStoreError as exc:
            raise self._down(exc) from None
        finally:
            self.metrics.feature_fetch.observe(time.perf_counter() - started)
        self._up(snapshot)
        values: list[Any] = answer[1:]
        unknown = [ident for ident, v in zip(ids, values, strict=True) if not v]
        if unknown:
            self._unknown.inc(len(unknown))
            listed = list(dict.fromkeys(unknown))
            raise UnknownIdError(
                f"{len(listed)} id(s) not in snapshot {snapshot.snapshot} of feature set "
                f"{self.keys.namespace!r}, e.g. {listed[0]!r}",
                {
                    "feature_set": self.keys.namespace,
                    "snapshot": snapshot.snapshot,
                    "unknown": listed[:MAX_UNKNOWN_LISTED],
                    "count": len(listed),
                },
            )
        self._found.inc(len(ids))
        try:
            matrix = decode_rows(snapshot.header, values, len(snapshot.features))
        except LayoutError as exc:
            raise FeatureStoreUnavailableError(f"snapshot {snapshot.snapshot}: {exc}") from exc
        return Fetched(snapshot, matrix)

    async def check(self) -> str | None:
        """Why the store is not usable now (None when it answers): a PING and the pointer."""
        try:
            answer = await self.client().read(self.keys.snapshot_root, self.keys.pointer, [])
            if not answer or not answer[0]:
                self.error = f"feature set {self.keys.namespace!r} has no current snapshot"
                return self.error
            self._up(await self._snapshot(int(answer[0])))
        except FeatureStoreUnavailableError as exc:
            self.error = str(exc)
            return self.error
        except FeatureStoreError as exc:
            self._down(exc)
            return f"feature store unavailable: {self.error}"
        return None

    def describe(self) -> dict[str, Any]:
        """What /metadata shows: where, which snapshot, whether it answered last time."""
        from ml.feature_store.redis_adapter import redacted_url

        return {
            "feature_set": self.keys.namespace,
            "redis_url": redacted_url(self.url),
            "available": self.error is None,
            "error": self.error,
            "snapshot": self.current.public() if self.current else None,
        }
