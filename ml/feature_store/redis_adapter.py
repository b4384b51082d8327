"""The one module that imports redis-py: connections (TLS and the auth token from the caller),
the atomic read script, and Redis errors mapped to `FeatureStoreUnavailableError`.

`SyncRedis` serves the CLI (materialize, rollback, skew); `AsyncRedis` serves `/predict/by-id` on
the event loop. Both read through `READ_SCRIPT`: the pointer and every requested vector in one
Lua call, which Redis runs atomically, so a reader sees one whole snapshot or nothing, in one
round trip. Error messages name the host, never the auth token (redis-py does not put it in
them; `redacted_url` drops a password written into the URL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ml.errors import ConfigError, FeatureStoreError, FeatureStoreUnavailableError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

# KEYS[1]: the pointer; ARGV[1]: the snapshot root (fs:NS:s:); ARGV[2..]: applicant ids.
# Returns {snapshot, value or false per id}, or {false} when no snapshot is current. The keys it
# builds are not declared: the store is one shard (a replication group, cluster mode off).
READ_SCRIPT = """
local n = redis.call('GET', KEYS[1])
if not n then return {false} end
local prefix = ARGV[1] .. n .. ':v:'
local out = {n}
-- MGET in slices: Lua's unpack takes a few thousand values at most.
for first = 2, #ARGV, 1000 do
  local keys = {}
  for i = first, math.min(first + 999, #ARGV) do keys[#keys + 1] = prefix .. ARGV[i] end
  for _, value in ipairs(redis.call('MGET', unpack(keys))) do out[#out + 1] = value end
end
return out
"""
# PEXPIRE (ARGV[1] ms) or, when ARGV[1] is 0, PERSIST every key given; returns how many exist.
TTL_SCRIPT = """
local n = 0
for _, key in ipairs(KEYS) do
  local ok
  if ARGV[1] == '0' then
    ok = redis.call('PERSIST', key) == 1 or redis.call('EXISTS', key) == 1
  else
    ok = redis.call('PEXPIRE', key, ARGV[1]) == 1
  end
  if ok then n = n + 1 end
end
return n
"""
# Evicting policies that may drop keys without a TTL: a snapshot must never lose vectors.
EVICTING = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})


def redacted_url(url: str) -> str:
    """The URL with any password replaced (what messages and /metadata show)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit((parts.scheme, f"{user}***@{host}", parts.path, parts.query, parts.fragment))


def _options(url: str, auth_token: str | None, timeout: float) -> dict[str, Any]:
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"feature store URL {redacted_url(url)!r} must start with redis:// or rediss:// (TLS)"
        )
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 0,
    }
    if auth_token:
        options["password"] = auth_token
    return options


@contextlib.contextmanager
def _mapped(url: str) -> Iterator[None]:
    import redis

    try:
        yield
    except redis.AuthenticationError as exc:
        raise FeatureStoreUnavailableError(
            f"Redis at {redacted_url(url)} refused the credentials: check the auth token"
        ) from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise FeatureStoreUnavailableError(
            f"Redis at {redacted_url(url)} did not answer: {type(exc).__name__}: {exc}"
        ) from exc
    except redis.WatchError as exc:
        raise FeatureStoreError(
            "another client changed the pointer during the switch; nothing moved, run again"
        ) from exc
    except redis.RedisError as exc:
        raise FeatureStoreError(f"Redis at {redacted_url(url)}: {exc}") from exc


class SyncRedis:
    """Blocking client for the write path and the skew check."""

    def __init__(self, url: str, auth_token: str | None = None, timeout: float = 10.0) -> None:
        import redis

        self.url = url
        self.client: redis.Redis = redis.Redis.from_url(url, **_options(url, auth_token, timeout))
        self._read = self.client.register_script(READ_SCRIPT)
        self._ttl = self.client.register_script(TTL_SCRIPT)

    def mapped(self) -> contextlib.AbstractContextManager[None]:
        """A block whose Redis errors become feature-store errors naming the host."""
        return _mapped(self.url)

    def ping(self) -> None:
        with self.mapped():
            self.client.ping()

    def eviction_policy(self) -> str:
        """`maxmemory-policy`, or "unknown" where CONFIG is disabled (ElastiCache)."""
        import redis

        with self.mapped():
            try:
                policy = self.client.config_get("maxmemory-policy")
            except redis.ResponseError:
                return "unknown"
        return str(policy.get("maxmemory-policy", "unknown"))

    def read(self, keys_root: str, pointer: str, ids: Sequence[str]) -> list[Any]:
        """The raw READ_SCRIPT answer."""
        with self.mapped():
            return list(self._read(keys=[pointer], args=[keys_root, *ids]))

    def write_values(self, pairs: Sequence[tuple[str, bytes]], batch: int = 1000) -> None:
        """MSET in batches of `batch` pairs, all pipelined in one round trip."""
        with self.mapped():
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(pairs), batch):
                flat: dict[str, bytes] = dict(pairs[start : start + batch])
                pipe.mset(flat)
            pipe.execute()

    def scan(self, prefix: str, count: int = 10_000) -> Iterator[list[Any]]:
        """Keys starting with `prefix`, a SCAN page at a time."""
        cursor = 0
        with self.mapped():
            while True:
                cursor, page = self.client.scan(cursor, match=f"{prefix}*", count=count)
                if page:
                    yield list(page)
                if cursor == 0:
                    return

    def set_ttl(self, keys: Sequence[Any], ttl_ms: int) -> int:
        """PEXPIRE (`ttl_ms` > 0) or PERSIST (0) the keys, 1000 per script call, pipelined;
        how many of them exist."""
        with self.mapped():
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(keys), 1000):
                self._ttl(keys=list(keys[start : start + 1000]), args=[ttl_ms], client=pipe)
            return sum(int(n) for n in pipe.execute())

    def delete(self, keys: Sequence[bytes | str]) -> None:
        with self.mapped():
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(keys), 1000):
                pipe.unlink(*keys[start : start + 1000])
            pipe.execute()

    def close(self) -> None:
        self.client.close()


class AsyncRedis:
    """Event-loop client for serving: a pooled connection, short timeouts, one script call per
    request."""

    def __init__(self, url: str, auth_token: str | None = None, timeout: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, **_options(url, auth_token, timeout), max_connections=64
        )
        self._read = self.client.register_script(READ_SCRIPT)

    async def read(self, keys_root: str, pointer: str, ids: Sequence[str]) -> list[Any]:
        """The raw READ_SCRIPT answer; FeatureStoreUnavailableError when Redis is away."""
        import redis

        try:
            return list(await self._read(keys=[pointer], args=[keys_root, *ids]))
        except redis.RedisError as exc:
            self._raise(exc)
            raise  # unreachable: _raise always raises

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        import redis

        try:
            return dict(await self.client.hgetall(key))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            self._raise(exc)
            raise

    async def ping(self) -> None:
        import redis

        try:
            await self.client.ping()
        except redis.RedisError as exc:
            self._raise(exc)

    def _raise(self, exc: Exception) -> None:
        with _mapped(self.url):
            raise exc

    async def close(self) -> None:
        await self.client.aclose()


def is_evicting(policy: str) -> bool:
    """True for a policy that may evict keys without a TTL (the current snapshot's)."""
    return policy in EVICTING
