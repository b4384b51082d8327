"""The one module that talks to Redis (redis-py, and hiredis directly): connections (TLS and the
auth token from the caller), the atomic read script, and Redis errors mapped to
`FeatureStoreUnavailableError`.

`SyncRedis` (redis-py) serves the CLI (materialize, rollback, skew); `AsyncRedis` serves
`/predict/by-id` on the event loop: one pipelined connection whose replies hiredis parses, as
lean as the hot path needs. Both read through `READ_SCRIPT`: the pointer and every requested
vector in one Lua call, which Redis runs atomically, so a reader sees one whole snapshot or
nothing, in one round trip. Error messages name the host, never the auth token (neither client
puts it in them; `redacted_url` drops a password written into the URL).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import ssl
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from ml.errors import ConfigError, FeatureStoreError, FeatureStoreUnavailableError

if TYPE_CHECKING:
    import redis

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


class _Pipeline(asyncio.Protocol):
    """One connection; commands are written as they come and their replies, which Redis sends
    in the same order, resolve the waiting futures first in, first out (hiredis parses them)."""

    def __init__(self) -> None:
        import hiredis

        self._parser = hiredis.Reader()
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            if not self._pending:  # a reply nobody asked for: the stream is out of step
                self.abort(ConnectionError("unexpected reply from Redis"))
                return
            future = self._pending.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(exc or ConnectionError("Redis closed the connection"))

    def abort(self, exc: Exception) -> None:
        """Fail every waiting command and drop the connection (a later one reconnects)."""
        if self.lost is None:
            self.lost = exc
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(self.lost)
        if self._transport is not None:
            self._transport.abort()

    def send(self, packed: bytes, future: asyncio.Future[Any]) -> None:
        """Queue a command; the commands queued in one turn of the event loop leave in one
        write (under load, the requests parsed together share a syscall and a Redis wake-up)."""
        if self.lost is not None:
            future.set_exception(self.lost)
            return
        self._pending.append(future)
        self._outgoing.append(packed)
        if len(self._outgoing) == 1:
            future.get_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._transport is not None and self.lost is None and self._outgoing:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()


class AsyncRedis:
    """Event-loop client for serving: one connection that pipelines every request's script call
    (concurrent requests share a write and a Redis wake-up instead of one connection each), the
    replies parsed by hiredis, and a timeout per call.

    redis-py's asyncio client spent ~90 us of CPU per call here and holds a connection per
    command, so at concurrency 8 each request woke Redis on its own connection
    (docs/performance.md). A timed-out call drops the connection (the replies still due on it
    would be out of step) and fails the calls waiting on it; the next call reconnects.
    """

    def __init__(self, url: str, auth_token: str | None = None, timeout: float = 0.5) -> None:
        _options(url, auth_token, timeout)  # the scheme check
        self.url = url
        parts = urlsplit(url)
        self._scheme = parts.scheme
        self._address = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._db = int(parts.path.strip("/") or 0) if parts.scheme != "unix" else 0
        self._username = parts.username
        self._password = auth_token or parts.password
        self._timeout = timeout
        self._sha = hashlib.sha1(READ_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis's id)
        self._conn: _Pipeline | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connect(self) -> _Pipeline:
        conn = self._conn
        if conn is not None and conn.lost is None:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._conn
            if conn is not None and conn.lost is None:
                return conn
            loop = asyncio.get_running_loop()
            if self._address is not None:
                opened = loop.create_unix_connection(_Pipeline, self._address)
            else:
                tls = ssl.create_default_context() if self._scheme == "rediss" else None
                opened = loop.create_connection(_Pipeline, self._host, self._port, ssl=tls)
            _, opened_conn = await asyncio.wait_for(opened, self._timeout)
            try:
                if self._password:
                    who = [self._username] if self._username else []
                    self._check(await self._send(opened_conn, "AUTH", *who, self._password))
                if self._db:
                    self._check(await self._send(opened_conn, "SELECT", str(self._db)))
            except BaseException:
                opened_conn.abort(ConnectionError("refused during the handshake"))
                raise
            self._conn = opened_conn
            return opened_conn

    async def _send(self, conn: _Pipeline, *args: str | bytes) -> Any:
        import hiredis

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        timer = loop.call_later(self._timeout, _expire, conn, future, self._timeout)
        try:
            conn.send(hiredis.pack_command(args), future)  # type: ignore[arg-type]
            return await future
        finally:
            timer.cancel()

    async def _call(self, *args: str | bytes) -> Any:
        """One command's reply; Redis's errors (in the reply or the connection) mapped."""
        try:
            reply = await self._send(await self._connect(), *args)
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise FeatureStoreUnavailableError(
                f"Redis at {redacted_url(self.url)} did not answer: {type(exc).__name__}: {exc}"
            ) from exc
        return reply

    def _check(self, reply: Any) -> Any:
        import hiredis

        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            if text.startswith(("WRONGPASS", "NOAUTH", "NOPERM")):
                raise FeatureStoreUnavailableError(
                    f"Redis at {redacted_url(self.url)} refused the credentials: check the auth "
                    "token"
                )
            raise FeatureStoreError(f"Redis at {redacted_url(self.url)}: {text}")
        return reply

    async def read(self, keys_root: str, pointer: str, ids: Sequence[str]) -> list[Any]:
        """The raw READ_SCRIPT answer; FeatureStoreUnavailableError when Redis is away."""
        reply = await self._call("EVALSHA", self._sha, "1", pointer, keys_root, *ids)
        if isinstance(reply, Exception) and str(reply).startswith("NOSCRIPT"):
            # A restarted or new Redis: EVAL sends the body once and caches it there.
            reply = await self._call("EVAL", READ_SCRIPT, "1", pointer, keys_root, *ids)
        return list(self._check(reply))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        flat = self._check(await self._call("HGETALL", key))
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def ping(self) -> None:
        self._check(await self._call("PING"))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort(ConnectionError("client closed"))


def _expire(conn: _Pipeline, future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        conn.abort(TimeoutError(f"no reply within {timeout} s"))


def is_evicting(policy: str) -> bool:
    """True for a policy that may evict keys without a TTL (the current snapshot's)."""
    return policy in EVICTING
