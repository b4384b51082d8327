"""The key layout and the binary vector format of the online feature store (ml/feature_store/
layout.py), and the Redis adapter's pure parts (URL checks and redaction)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.errors import ConfigError
from ml.feature_store.layout import (
    HEADER,
    ID_PATTERN,
    Keys,
    LayoutError,
    SnapshotInfo,
    contract_id,
    decode_rows,
    encode_rows,
)
from ml.feature_store.redis_adapter import SyncRedis, is_evicting, redacted_url
from ml.features import CONTRACT


def info(snapshot: int = 3, version: str = "abc") -> SnapshotInfo:
    return SnapshotInfo(snapshot, CONTRACT.names, contract_id(CONTRACT), version, 10)


def test_vectors_round_trip_as_the_float32_the_model_scores() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.uniform(-1e6, 1e6, size=(50, len(CONTRACT.names)))
    header = info().header

    values = encode_rows(header, matrix)
    back = decode_rows(header, values, len(CONTRACT.names))

    assert len(values) == 50
    assert all(len(v) == HEADER.size + 4 * 23 for v in values)
    assert np.array_equal(back, matrix.astype(np.float32))


def test_a_vector_of_another_snapshot_or_length_is_refused() -> None:
    values = encode_rows(info(version="one").header, np.zeros((2, 23)))

    with pytest.raises(LayoutError, match="value 0 is not a vector of this snapshot"):
        decode_rows(info(version="two").header, values, 23)
    with pytest.raises(LayoutError, match="value 1"):
        decode_rows(info(version="one").header, [values[0], values[1][:-4]], 23)


def test_the_contract_id_changes_with_any_bound() -> None:
    narrower = CONTRACT.replaced(
        type(CONTRACT.feature("AGE"))("AGE", "int", minimum=21, maximum=100, reason="narrower")
    )

    assert contract_id(CONTRACT) == contract_id(CONTRACT)
    assert contract_id(narrower) != contract_id(CONTRACT)


def test_the_snapshot_record_round_trips_through_a_redis_hash() -> None:
    record = info()
    raw = {k.encode(): v.encode() for k, v in record.to_redis().items()}

    assert SnapshotInfo.from_redis(3, raw) == record
    with pytest.raises(LayoutError, match="incomplete"):
        SnapshotInfo.from_redis(3, {b"format": b"1"})


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "x" * 65, "*", "ü"])
def test_ids_that_could_address_another_key_are_refused(bad: str) -> None:
    assert not ID_PATTERN.match(bad)


def test_keys_keep_vectors_apart_from_the_snapshot_record() -> None:
    keys = Keys("credit-risk")

    assert keys.vector_prefix(4) + "meta" != keys.meta(4)
    assert keys.vector_prefix(4).startswith(keys.snapshot_root)
    with pytest.raises(LayoutError, match="feature set name"):
        Keys("a:b")


def test_urls_are_redis_only_and_never_show_a_password() -> None:
    assert redacted_url("rediss://:s3cret@cache:6379/0") == "rediss://:***@cache:6379/0"
    assert redacted_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ConfigError, match="redis:// or rediss://"):
        SyncRedis("http://:s3cret@cache:6379")
    assert is_evicting("allkeys-lru")
    assert not is_evicting("noeviction")
    assert not is_evicting("volatile-lru")
