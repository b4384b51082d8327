"""The serving side's Redis client (ml/feature_store/redis_adapter.py `AsyncRedis`) against a real
redis-server: many concurrent reads pipelined on one connection each get their own reply; a Redis
that lost the script (restart, SCRIPT FLUSH) is sent it again; a wrong or missing auth token and a
stalled Redis are `FeatureStoreUnavailableError`s that never show the token, and a timed-out call
leaves no reply out of step for the next ones."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.services import RedisServer
from ml.errors import FeatureStoreUnavailableError
from ml.feature_store.redis_adapter import AsyncRedis, SyncRedis

ROOT = "fs:t:s:"
POINTER = "fs:t:current"
TOKEN = "s3cret-token-for-the-test"


@pytest.fixture(scope="module")
def store(redis_server: RedisServer) -> Iterator[SyncRedis]:
    """Snapshot 4 current, with vectors `v<i>` for ids 0..499."""
    sync = SyncRedis(redis_server.url)
    sync.client.set(POINTER, "4")
    sync.client.mset({f"{ROOT}4:v:{i}": f"v{i}".encode() for i in range(500)})
    yield sync
    sync.close()


def test_concurrent_reads_on_one_connection_each_get_their_own_vectors(
    redis_server: RedisServer, store: SyncRedis
) -> None:
    async def go() -> list[list[object]]:
        client = AsyncRedis(redis_server.url)
        try:
            batches = [[str(i), str(i + 1), "missing"] for i in range(0, 400, 2)]
            return await asyncio.gather(*(client.read(ROOT, POINTER, ids) for ids in batches))
        finally:
            await client.close()

    answers = asyncio.run(go())
    assert isinstance(answers, list)
    for n, answer in enumerate(answers):
        i = 2 * n
        assert answer == [b"4", f"v{i}".encode(), f"v{i + 1}".encode(), None]
    # And the same answer as the CLI's client
    assert answers[0] == store.read(ROOT, POINTER, ["0", "1", "missing"])


def test_a_redis_that_lost_the_script_is_sent_it_again(
    redis_server: RedisServer, store: SyncRedis
) -> None:
    async def go() -> tuple[object, object]:
        client = AsyncRedis(redis_server.url)
        try:
            first = await client.read(ROOT, POINTER, ["7"])
            store.client.script_flush()
            return first, await client.read(ROOT, POINTER, ["8"])
        finally:
            await client.close()

    assert asyncio.run(go()) == ([b"4", b"v7"], [b"4", b"v8"])


def test_auth_token_is_sent_and_a_wrong_one_is_refused_without_showing_it(
    redis_server: RedisServer, store: SyncRedis
) -> None:
    store.client.config_set("requirepass", TOKEN)
    try:

        async def go(token: str | None) -> object:
            client = AsyncRedis(redis_server.url, token)
            try:
                return await client.read(ROOT, POINTER, ["3"])
            finally:
                await client.close()

        assert asyncio.run(go(TOKEN)) == [b"4", b"v3"]
        for token in ("wrong-token", None):
            with pytest.raises(FeatureStoreUnavailableError) as failed:
                asyncio.run(go(token))
            message = str(failed.value)
            assert "refused the credentials" in message, message
            assert TOKEN not in message
            assert "wrong-token" not in message
    finally:
        authed = SyncRedis(redis_server.url, TOKEN)
        authed.client.config_set("requirepass", "")
        authed.close()


def test_a_stalled_redis_times_out_and_the_next_calls_stay_in_step(
    redis_server: RedisServer, store: SyncRedis
) -> None:
    async def go() -> tuple[list[list[Any] | BaseException], float, list[list[Any]]]:
        client = AsyncRedis(redis_server.url, timeout=0.3)
        try:
            assert await client.read(ROOT, POINTER, ["1"]) == [b"4", b"v1"]
            os.kill(redis_server.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            try:
                stalled = await asyncio.gather(
                    *(client.read(ROOT, POINTER, [str(i)]) for i in range(5)),
                    return_exceptions=True,
                )
            finally:
                waited = time.monotonic() - started
                os.kill(redis_server.process.pid, signal.SIGCONT)
            # The replies to the stalled calls arrive on the dropped connection, never here.
            after = [await client.read(ROOT, POINTER, [str(i)]) for i in range(20, 25)]
            return stalled, waited, after
        finally:
            await client.close()

    stalled, waited, after = asyncio.run(go())
    assert all(isinstance(e, FeatureStoreUnavailableError) for e in stalled), stalled
    assert "did not answer" in str(stalled[0])
    assert waited < 3, waited
    assert after == [[b"4", f"v{i}".encode()] for i in range(20, 25)]
