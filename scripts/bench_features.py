"""Benchmark the online feature store: fetch latency, by-id vs /predict, materialize at 1 M rows.

On a throwaway redis-server (devtools.services.start_redis) and a real `python -m serve` process:
1. materialize N synthetic in-contract applicants (`mlops features materialize`, a subprocess):
   wall time and its peak RSS; Redis memory per applicant (used_memory before and after);
2. feature fetch on loopback: the read script (pointer + one applicant's vector, one round trip)
   from a blocking redis-py client with hiredis, p50 and p99 over many calls;
3. `/predict/by-id` (one random id) vs `/predict` (the same applicant's 23 features) with wrk at
   concurrency 8 on the same process: p50, p99, requests per second.

Usage: python scripts/bench_features.py [--rows 1000000] [--duration 5] [--fetches 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ml.feature_store.layout import Keys
from ml.feature_store.redis_adapter import SyncRedis
from ml.features import FEATURE_COLUMNS, FEATURES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # devtools/ is not in the wheel: import it from the checkout
from devtools.services import free_port, start_redis, stop_redis  # noqa: E402

BIN = Path(sys.executable).parent

BY_ID_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/predict/by-id", nil, '{"ids":["' .. math.random(1, %d) .. '"]}')
end
"""
PREDICT_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%s"):read("*a")
"""


def synthetic(rows: int, path: Path, seed: int = 0) -> None:
    """`rows` in-contract applicants with ids 1..rows, as Parquet (written in slices)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, 250_000):
        n = min(250_000, rows - start)
        data: dict[str, np.ndarray] = {"ID": np.arange(start + 1, start + n + 1, dtype=np.int64)}
        for col in FEATURE_COLUMNS:
            if col.codes is not None:
                data[col.name] = rng.choice(sorted(col.codes), size=n).astype(np.int64)
            elif col.dtype == "int":
                data[col.name] = rng.integers(21, 80, size=n, dtype=np.int64)
            else:
                data[col.name] = np.round(rng.uniform(0, 500_000, size=n))
        table = pa.table(data)
        writer = writer or pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def tiny_model(path: Path) -> None:
    """A 50-tree booster with the 23-feature signature, saved as an MLflow model directory."""
    import mlflow.xgboost
    import pandas as pd
    from mlflow.models import infer_signature
    from xgboost import XGBClassifier

    synthetic(2000, path.parent / "train.parquet", seed=1)
    x = pd.read_parquet(path.parent / "train.parquet")[FEATURES]
    y = (x["PAY_0"] > 0).astype(int) ^ (np.random.default_rng(1).random(len(x)) < 0.2)
    model = XGBClassifier(n_estimators=50, max_depth=4, n_jobs=1).fit(x, y)
    example = x.head(5)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    mlflow.xgboost.save_model(
        model, str(path), signature=signature, input_example=example, model_format="ubj",
        pip_requirements=["xgboost"],
    )  # fmt: skip


@contextlib.contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = {**os.environ, "SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port), **env}
    full.pop("MLFLOW_TRACKING_URI", None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serve"], cwd=ROOT, env=full, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/ready", timeout=2) as r,  # noqa: S310
            ):
                if r.status == 200:
                    break
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def wrk(url: str, script: Path, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def in_process(model: Path, url: str, body: dict[str, Any], rows: int) -> dict[str, float]:
    """Per-request latency inside one process (ASGI, no HTTP, no load generator), one request
    at a time, by-id and /predict alternating: what each route costs, apart from the machine's
    load and wrk's own CPU."""
    import asyncio

    import httpx
    import uvloop

    from serve.app import create_app
    from serve.settings import ServeSettings

    settings = ServeSettings(model_path=model, features_redis_url=url, log_predictions=False)
    app = create_app(settings)
    times: dict[str, list[float]] = {"/predict": [], "/predict/by-id": [], "fetch": []}
    rng = np.random.default_rng(1)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            while app.state.store.current is None:
                await asyncio.sleep(0.1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for i in range(6000):
                    ident = str(int(rng.integers(1, rows + 1)))
                    started = time.perf_counter()
                    if i % 3 == 0:
                        reply = await client.post("/predict", json=body)
                        name = "/predict"
                    elif i % 3 == 1:
                        reply = await client.post("/predict/by-id", json={"ids": [ident]})
                        name = "/predict/by-id"
                    else:
                        await app.state.features.fetch([ident])
                        times["fetch"].append(time.perf_counter() - started)
                        continue
                    assert reply.status_code == 200, reply.text
                    times[name].append(time.perf_counter() - started)

    uvloop.run(run())
    return {k: float(np.percentile(v[200:], 50) * 1e3) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--fetches", type=int, default=20_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis(tmp / "redis")
        try:
            return _run(args, tmp, redis.url)
        finally:
            stop_redis(redis)


def _run(args: argparse.Namespace, tmp: Path, url: str) -> int:
    source = tmp / "applicants.parquet"
    synthetic(args.rows, source)
    r = SyncRedis(url)
    before = int(r.client.info("memory")["used_memory"])
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "mlops"), "features", "materialize", "--input", str(source),
         "--rejects", str(tmp / "rejects.parquet")],
        env={**os.environ, "ML_FEATURES_REDIS_URL": url}, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        return 1
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    after = int(r.client.info("memory")["used_memory"])
    summary = json.loads(done.stdout)
    per_applicant = (after - before) / summary["written"]

    keys = Keys("credit-risk")
    rng = np.random.default_rng(0)
    ids = [str(i) for i in rng.integers(1, args.rows + 1, size=args.fetches)]
    for ident in ids[:1000]:  # warm-up: connection, script cache
        r.read(keys.snapshot_root, keys.pointer, [ident])
    times = np.empty(len(ids))
    for i, ident in enumerate(ids):
        t0 = time.perf_counter()
        r.read(keys.snapshot_root, keys.pointer, [ident])
        times[i] = time.perf_counter() - t0
    r.close()

    model = tmp / "model"
    tiny_model(model)
    import pandas as pd

    record = pd.read_parquet(source).head(1)[FEATURES].iloc[0]
    body = {
        "records": [
            {c.name: (int(record[c.name]) if c.dtype == "int" else float(record[c.name]))
             for c in FEATURE_COLUMNS}
        ]
    }  # fmt: skip
    (tmp / "predict.json").write_text(json.dumps(body))
    (tmp / "predict.lua").write_text(PREDICT_LUA % (tmp / "predict.json"))
    (tmp / "by_id.lua").write_text(BY_ID_LUA % args.rows)
    env = {
        "SERVE_MODEL_PATH": str(model),
        "SERVE_FEATURES_REDIS_URL": url,
        "SERVE_LOG_PREDICTIONS": "false",
    }
    with serve(env, tmp / "serve.log") as base:
        wrk(f"{base}/predict", tmp / "predict.lua", 2)  # warm-up
        wrk(f"{base}/predict/by-id", tmp / "by_id.lua", 2)
        predict = wrk(f"{base}/predict", tmp / "predict.lua", args.duration)
        by_id = wrk(f"{base}/predict/by-id", tmp / "by_id.lua", args.duration)

    print(f"materialize {summary['written']:,} rows: {seconds:.1f} s wall "
          f"({summary['seconds']:.1f} s in the verb), peak RSS {peak_mib:,.0f} MiB")  # fmt: skip
    print(f"Redis memory per applicant: {per_applicant:.0f} bytes "
          f"({(after - before) / 2**20:,.0f} MiB for {summary['written']:,})")  # fmt: skip
    p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
    print(f"feature fetch (1 id, loopback, {len(ids):,} calls): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    for name, res in (("/predict", predict), ("/predict/by-id", by_id)):
        print(f"{name:15} c=8: p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
              f"{res['req_s']:,.0f} req/s, non-2xx {res['errors']:.0f}")  # fmt: skip
    print(f"by-id p99 - predict p99: {by_id['p99_ms'] - predict['p99_ms']:+.2f} ms")
    inside = in_process(model, url, body, args.rows)
    print(f"in one process, one at a time (p50): /predict {inside['/predict']:.3f} ms, "
          f"/predict/by-id {inside['/predict/by-id']:.3f} ms, of which the fetch "
          f"{inside['fetch']:.3f} ms")  # fmt: skip
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
