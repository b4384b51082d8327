"""The online feature store end to end: `mlops features` against a real redis-server, scored by a
real `mlops serve` process (python -m serve under uvicorn) through POST /predict/by-id.

Given the 30,000 UCI rows materialised as a snapshot, when the service scores them by id, then
the scores equal /predict's on the same rows; a second snapshot switches in whole (a reader
running through the switch and the rollback only ever sees one snapshot's scores); refused rows
never reach Redis; an unknown id is a 404 naming the snapshot; a Redis crash turns by-id into
503s while /predict answers and /health says degraded, until Redis is back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest_serve import save_tiny_model_dir, serve_process

from devtools.services import RedisServer, start_redis, stop_redis
from ml.contract import CONTRACT_FILE
from ml.feature_store.layout import Keys
from ml.feature_store.redis_adapter import SyncRedis
from ml.features import CONTRACT, FEATURE_COLUMNS, FEATURES

ROOT = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).with_name("mlops")
KEYS = Keys("credit-risk")
BATCH = 1000


@dataclass
class World:
    redis: RedisServer
    url: str  # the service
    root: Path
    rows: pd.DataFrame  # the 30,000 UCI rows (ID + features)

    def mlops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ML_FEATURES_REDIS_URL": self.redis.url}
        done = subprocess.run(
            [str(MLOPS), "features", *args],
            cwd=self.root, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(f"mlops features {args} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def materialize(self, frame: pd.DataFrame, name: str) -> dict[str, Any]:
        path = self.root / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        done = self.mlops("materialize", "--input", str(path), "--rejects", f"{name}.rej.parquet")
        return dict(json.loads(done.stdout))

    def redis_client(self) -> SyncRedis:
        return SyncRedis(self.redis.url)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            c.name: (int(v) if c.dtype == "int" else float(v))
            for c, v in zip(FEATURE_COLUMNS, r, strict=True)
        }
        for r in frame[FEATURES].itertuples(index=False, name=None)
    ]


def predict_scores(url: str, frame: pd.DataFrame) -> np.ndarray:
    """/predict's probabilities for the rows of `frame`, in order."""
    out: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(frame), BATCH):
            reply = client.post(
                "/predict", json={"records": _records(frame[start : start + BATCH])}
            )
            assert reply.status_code == 200, reply.text
            out += [p["probability"] for p in reply.json()["predictions"]]
    return np.array(out)


def by_id(client: httpx.Client, ids: list[str]) -> httpx.Response:
    return client.post("/predict/by-id", json={"ids": ids})


def by_id_scores(url: str, ids: list[str]) -> tuple[np.ndarray, set[int]]:
    """/predict/by-id's probabilities for `ids`, and the snapshots the answers named."""
    out: list[float] = []
    snapshots: set[int] = set()
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(ids), BATCH):
            reply = by_id(client, ids[start : start + BATCH])
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert [p["id"] for p in body["predictions"]] == ids[start : start + BATCH]
            snapshots.add(body["features"]["snapshot"])
            out += [p["probability"] for p in body["predictions"]]
    return np.array(out), snapshots


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[World]:
    root = tmp_path_factory.mktemp("online-features")
    redis = redis_server
    model = save_tiny_model_dir(root / "model", seed=3)
    (root / "metadata.json").write_text('{"name": "credit-risk", "version": "7"}')
    (root / CONTRACT_FILE).write_text(CONTRACT.to_json())
    rows = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz")[["ID", *FEATURES]]
    env = {
        "SERVE_MODEL_PATH": str(model),
        "SERVE_FEATURES_REDIS_URL": redis.url,
        "SERVE_FEATURES_TIMEOUT": "0.5",
        "SERVE_LOG_PREDICTIONS": "true",
    }
    world = World(redis, "", root, rows)
    try:
        with serve_process(env, root / "serve.log") as url:
            world.url = url
            yield world
    finally:
        if world.redis is not redis_server:  # restarted by the outage test
            stop_redis(world.redis)


def test_by_id_scores_equal_predict_scores_on_30k_rows(world: World) -> None:
    summary = world.materialize(world.rows, "uci")
    assert summary["written"] == 30_000
    assert summary["rejected"] == 0
    ids = [str(i) for i in world.rows["ID"]]

    served, snapshots = by_id_scores(world.url, ids)
    direct = predict_scores(world.url, world.rows)

    assert snapshots == {summary["snapshot"]}
    assert np.abs(served - direct).max() <= 1e-9
    metadata = httpx.get(f"{world.url}/metadata").json()
    assert metadata["features"]["snapshot"]["snapshot"] == summary["snapshot"]
    assert metadata["features"]["snapshot"]["data_version"] == summary["data_version"]
    metrics = httpx.get(f"{world.url}/metrics").text
    assert f'snapshot="{summary["snapshot"]}"' in metrics
    assert "serve_feature_fetch_seconds_count" in metrics
    log = (world.root / "serve.log").read_text()
    assert (
        f'"feature_snapshot":{{"feature_set":"credit-risk","snapshot":{summary["snapshot"]}' in log
    )


def test_a_switch_is_whole_for_a_reader_and_rollback_restores_the_old_scores(
    world: World,
) -> None:
    first = world.materialize(world.rows, "before")
    changed = world.rows.copy()
    changed["PAY_0"] = np.clip(changed["PAY_0"] + 3, -2, 9)  # later payments: other scores
    changed["LIMIT_BAL"] = changed["LIMIT_BAL"] / 2
    watched = changed.sample(300, random_state=1)
    ids = [str(i) for i in watched["ID"]]
    old = predict_scores(world.url, world.rows.set_index("ID").loc[watched["ID"]].reset_index())
    new = predict_scores(world.url, watched)
    assert not np.allclose(old, new), "the change must move the watched scores"

    seen: list[tuple[int, np.ndarray]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=world.url, timeout=30) as client:
            while not stop.is_set():
                reply = by_id(client, ids)
                if reply.status_code != 200:
                    errors.append(reply.text)
                    continue
                body = reply.json()
                scores = np.array([p["probability"] for p in body["predictions"]])
                seen.append((body["features"]["snapshot"], scores))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        second = world.materialize(changed, "after")
        time.sleep(0.3)
        after_switch = by_id_scores(world.url, ids)
        rolled = json.loads(world.mlops("rollback").stdout)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(30)

    assert second["previous"] == first["snapshot"]
    assert rolled == {**rolled, "from": second["snapshot"], "to": first["snapshot"]}
    assert not errors
    assert np.array_equal(after_switch[0], new)
    assert after_switch[1] == {second["snapshot"]}
    assert np.array_equal(by_id_scores(world.url, ids)[0], old)
    expected = {first["snapshot"]: old, second["snapshot"]: new}
    order = [n for n, _ in seen]
    assert set(order) == set(expected), f"the reader saw snapshots {sorted(set(order))}"
    assert order.index(second["snapshot"]) < len(order) - 1 - order[::-1].index(first["snapshot"])
    for snapshot, scores in seen:  # every answer is one whole snapshot, never a mix
        assert np.array_equal(scores, expected[snapshot]), f"a mixed answer from {snapshot}"


def test_rows_out_of_contract_never_reach_redis(world: World) -> None:
    frame = world.rows.head(2000).copy()
    frame["ID"] = frame["ID"] + 100_000  # ids no earlier snapshot holds
    frame.loc[3, "AGE"] = 200
    frame.loc[4, "SEX"] = 7
    frame.loc[5, "PAY_AMT1"] = -5.0
    frame.loc[6, "EDUCATION"] = 1.5
    frame = pd.concat([frame, frame.iloc[[10]]])  # id of row 10 twice: the second is refused
    bad_ids = [str(frame["ID"].iloc[i]) for i in (3, 4, 5, 6)]

    summary = world.materialize(frame, "bad")
    rejects = pd.read_parquet(world.root / "bad.rej.parquet")

    assert summary["written"] == 1996
    assert summary["rejected"] == 5
    assert sorted(rejects["id"]) == sorted([*bad_ids, str(frame["ID"].iloc[10])])
    assert rejects.set_index("id").loc[bad_ids[0], "reason"].startswith("AGE: 200")
    r = world.redis_client()
    try:
        for ident in bad_ids:
            for snapshot in range(1, summary["snapshot"] + 1):
                assert r.client.exists(f"{KEYS.vector_prefix(snapshot)}{ident}") == 0
    finally:
        r.close()
    with httpx.Client(base_url=world.url) as client:
        reply = by_id(client, [bad_ids[0]])
        assert reply.status_code == 404
        assert reply.json()["detail"]["unknown"] == [bad_ids[0]]


def test_unknown_id_is_a_404_naming_the_snapshot(world: World) -> None:
    current = world.materialize(world.rows.head(100), "known")["snapshot"]
    with httpx.Client(base_url=world.url) as client:
        reply = by_id(client, ["1", "no-such-applicant", "2"])
        malformed = by_id(client, ["a:b"])

    assert reply.status_code == 404
    body = reply.json()
    assert body["error"] == "unknown_id"
    assert body["detail"] == {
        "feature_set": "credit-risk",
        "snapshot": current,
        "unknown": ["no-such-applicant"],
        "count": 1,
    }
    assert f"snapshot {current}" in body["message"]
    assert malformed.status_code == 422


def test_redis_killed_mid_load_by_id_503_predict_200_health_degraded_then_recovery(
    world: World,
) -> None:
    world.materialize(world.rows.head(5000), "small")
    ids = [str(i) for i in world.rows["ID"].head(20)]
    record = _records(world.rows.head(1))
    statuses: dict[str, list[int]] = {"by-id": [], "predict": []}
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=world.url, timeout=10) as client:
            while not stop.is_set():
                statuses["by-id"].append(by_id(client, ids).status_code)
                statuses["predict"].append(
                    client.post("/predict", json={"records": record}).status_code
                )

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(0.5)
        stop_redis(world.redis, kill=True)  # a crash, mid-load
        time.sleep(1.5)
        with httpx.Client(base_url=world.url, timeout=10) as client:
            down = by_id(client, ids)
            health = client.get("/health").json()
            metadata = client.get("/metadata").json()
        world.redis = start_redis(world.redis.folder, port=world.redis.port)
        time.sleep(0.5)
        with httpx.Client(base_url=world.url, timeout=10) as client:
            empty = by_id(client, ids)  # back, but empty (no persistence): still 503
        world.materialize(world.rows.head(5000), "again")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)

    assert down.status_code == 503
    assert down.json()["error"] == "feature_store_unavailable"
    assert health["status"] == "degraded"
    assert health["feature_store"] == "unavailable"
    assert "feature store" in health["reason"]
    assert metadata["features"]["available"] is False
    assert empty.status_code == 503
    assert "no current snapshot" in empty.json()["message"]
    assert set(statuses["predict"]) == {200}, "/predict must not depend on Redis"
    assert 503 in statuses["by-id"]
    assert statuses["by-id"][-1] == 200
    assert set(statuses["by-id"]) <= {200, 503}
    with httpx.Client(base_url=world.url, timeout=10) as client:
        assert by_id(client, ids).status_code == 200
        recovered = client.get("/health").json()
    assert recovered["status"] == "ok"
    assert recovered["feature_store"] == "ok"
    metrics = httpx.get(f"{world.url}/metrics").text
    assert "serve_feature_store_up 1.0" in metrics


def test_skew_gate_passes_on_the_source_and_names_a_changed_vector(world: World) -> None:
    summary = world.materialize(world.rows, "skew")
    source = str(world.root / "skew.parquet")

    clean = world.mlops("skew", "--input", source, "--sample", "2000")
    r = world.redis_client()
    try:
        # Given one stored vector altered behind the pipeline's back (same header, AGE + 1)
        target = str(world.rows["ID"].iloc[0])
        key = f"{KEYS.vector_prefix(summary['snapshot'])}{target}"
        value = bytearray(r.client.get(key))  # type: ignore[arg-type]
        age = 18 + 4 * FEATURES.index("AGE")
        value[age : age + 4] = (np.frombuffer(value[age : age + 4], "<f4") + 1).tobytes()
        r.client.set(key, bytes(value))
    finally:
        r.close()
    skewed = world.mlops("skew", "--input", source, "--sample", "30000", check=False)
    other_file = world.root / "other.parquet"
    world.rows.head(10).to_parquet(other_file, index=False)
    other = world.mlops("skew", "--input", str(other_file), check=False)

    assert json.loads(clean.stdout)["ok"] is True
    assert json.loads(clean.stdout)["equal"] == 2000
    assert skewed.returncode == 19, skewed.stderr
    report = json.loads(skewed.stdout)
    assert report["differing_count"] == 1
    assert report["differing"][0]["id"] == target
    assert list(report["differing"][0]["features"]) == ["AGE"]
    assert other.returncode == 19
    assert "data version" in other.stderr


def test_a_redis_that_may_evict_current_keys_is_refused_and_nothing_switches(world: World) -> None:
    before = json.loads(world.mlops("status").stdout)["current"]
    r = world.redis_client()
    r.client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        done = world.mlops("materialize", "--input", str(world.root / "uci.parquet"), check=False)
        after = json.loads(world.mlops("status").stdout)["current"]
    finally:
        r.client.config_set("maxmemory-policy", "noeviction")
        r.close()

    assert done.returncode == 18
    assert "maxmemory-policy allkeys-lru" in done.stderr
    assert after == before
