"""Benchmark the online feature store: fetch latency, by-id vs /predict, materialize at 1 M rows.

On a throwaway redis-server (devtools.services.start_redis) and a real `python -m serve` process:
1. materialize N synthetic in-contract applicants (`mlops features materialize`, a subprocess):
   wall time and its peak RSS; Redis memory per applicant (used_memory before and after);
2. feature fetch on loopback: the read script (pointer + one applicant's vector, one round trip)
   from a blocking redis-py client with hiredis, p50 and p99 over many calls;
3. `/predict/by-id` (one random id) vs `/predict` (the same applicant's 23 features) with wrk at
   concurrency 8 on the same process, interleaved: `--rounds` pairs of runs of `--duration`
   seconds each, /predict then by-id, so both see the same machine (a loaded machine's tail moves
   by tens of ms from one minute to the next): p50, p99 and requests per second per round, the
   median over rounds, and the median of the per-round p99 differences;
4. in one process, one request at a time (no HTTP, no load generator): p50 and p99 of each route
   and of the fetch alone.

Usage: python scripts/bench_features.py [--rows 1000000] [--duration 5] [--rounds 5]
       [--fetches 20000]
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
from devtools.proc_stat import stat  # noqa: E402
from devtools.services import free_port, start_redis, stop_redis  # noqa: E402

BIN = Path(sys.executable).parent

# Both routes' requests are formatted once per wrk thread and picked in turn by `request()`: the
# load generator then costs the same per request on both (a request built per call in Lua costs
# wrk CPU that the server, on the same cores, would be charged for).
_WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local requests, n = {}, 0
%s
init = function(args)
  math.randomseed(os.time())
  for i = 1, 1000 do requests[i] = wrk.format(nil, nil, nil, body()) end
end
request = function()
  n = n %%%% #requests + 1
  return requests[n]
end
"""
BY_ID_LUA = _WRK_LUA % """body = function() return '{"ids":["' .. math.random(1, %d) .. '"]}' end"""
PREDICT_LUA = (
    _WRK_LUA
    % """local f = io.open("%s")
local fixed = f:read("*a")
f:close()
body = function() return fixed end"""
)


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
def serve(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
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
        yield url, proc.pid
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
    failed: dict[str, int] = {}
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
                    times[name].append(time.perf_counter() - started)
                    if reply.status_code != 200:  # e.g. a Redis call past its timeout: counted
                        failed[name] = failed.get(name, 0) + 1

    uvloop.run(run())
    out = {
        f"{k} {q}": float(np.percentile(v[200:], q) * 1e3)
        for k, v in times.items()
        for q in (50, 99)
    }
    return {**out, **{f"{k} failed": float(n) for k, n in failed.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved pairs of wrk runs")
    parser.add_argument("--fetches", type=int, default=20_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = start_redis(tmp / "redis")
        try:
            return _run(args, tmp, redis.url, redis.process.pid)
        finally:
            stop_redis(redis)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    return stat(pid)[1]


def _run(args: argparse.Namespace, tmp: Path, url: str, redis_pid: int) -> int:
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
    loads = [os.getloadavg()[0]]
    rounds: dict[str, list[dict[str, float]]] = {"/predict": [], "/predict/by-id": []}
    scripts = {"/predict": tmp / "predict.lua", "/predict/by-id": tmp / "by_id.lua"}
    # CPU per request of the service and of redis-server in each run: what a route costs the
    # machine, which a loaded machine's queueing does not blur as it blurs the tail.
    cpu: dict[str, list[tuple[float, float]]] = {"/predict": [], "/predict/by-id": []}
    with serve(env, tmp / "serve.log") as (base, serve_pid):
        for name, script in scripts.items():  # warm-up
            wrk(f"{base}{name}", script, 2)
        for _ in range(args.rounds):
            for name, script in scripts.items():
                spent = cpu_seconds(serve_pid), cpu_seconds(redis_pid)
                result = wrk(f"{base}{name}", script, args.duration)
                requests = max(result["req_s"] * args.duration, 1.0)
                cpu[name].append(
                    ((cpu_seconds(serve_pid) - spent[0]) / requests * 1e6,
                     (cpu_seconds(redis_pid) - spent[1]) / requests * 1e6)
                )  # fmt: skip
                rounds[name].append(result)
            loads.append(os.getloadavg()[0])

    print(f"materialize {summary['written']:,} rows: {seconds:.1f} s wall "
          f"({summary['seconds']:.1f} s in the verb), peak RSS {peak_mib:,.0f} MiB")  # fmt: skip
    print(f"Redis memory per applicant: {per_applicant:.0f} bytes "
          f"({(after - before) / 2**20:,.0f} MiB for {summary['written']:,})")  # fmt: skip
    p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
    print(f"feature fetch (1 id, loopback, {len(ids):,} calls): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"c=8, {args.rounds} interleaved rounds of {args.duration} s per route (p50 / p99 ms):")
    for n in range(args.rounds):
        a, b = rounds["/predict"][n], rounds["/predict/by-id"][n]
        diff = b["p99_ms"] - a["p99_ms"]
        print(f"  round {n + 1}: /predict {a['p50_ms']:.2f} / {a['p99_ms']:.2f}, "
              f"by-id {b['p50_ms']:.2f} / {b['p99_ms']:.2f}, "
              f"p99 difference {diff:+.2f} (load {loads[n + 1]:.1f})")  # fmt: skip
    for name, runs in rounds.items():
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        print(f"{name:15} c=8 (median of rounds): p50 {med['p50_ms']:.2f} ms, "
              f"p99 {med['p99_ms']:.2f} ms, {med['req_s']:,.0f} req/s, "
              f"non-2xx {sum(r['errors'] for r in runs):.0f}")  # fmt: skip
    diffs = [
        b["p99_ms"] - a["p99_ms"]
        for a, b in zip(rounds["/predict"], rounds["/predict/by-id"], strict=True)
    ]
    for name, costs in cpu.items():
        service = float(np.median([c[0] for c in costs]))
        store = float(np.median([c[1] for c in costs]))
        print(f"{name:15} CPU per request (median of rounds): service {service:.0f} us, "
              f"redis-server {store:.0f} us")  # fmt: skip
    print(f"by-id p99 - predict p99: median {float(np.median(diffs)):+.2f} ms "
          f"(rounds: {', '.join(f'{d:+.2f}' for d in diffs)})")  # fmt: skip
    inside = in_process(model, url, body, args.rows)
    print("in one process, one at a time (p50 / p99 ms): "
          f"/predict {inside['/predict 50']:.3f} / {inside['/predict 99']:.3f}, "
          f"/predict/by-id {inside['/predict/by-id 50']:.3f} / {inside['/predict/by-id 99']:.3f}, "
          f"the fetch alone {inside['fetch 50']:.3f} / {inside['fetch 99']:.3f}; non-200: "
          f"{inside.get('/predict failed', 0):.0f} and "
          f"{inside.get('/predict/by-id failed', 0):.0f}")  # fmt: skip
    loads.append(os.getloadavg()[0])
    print(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
