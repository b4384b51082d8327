"""Benchmark: this service vs `mlflow models serve` vs a constant FastAPI endpoint, one run.

Trains the XGBoost champion on the full data into a temporary embedded store (`mlops train
--model xgboost`), serves the same registered version three ways with the same uvicorn settings,
and drives each with wrk (POST bodies from a Lua script): single records at concurrency 1, 8 and
32, and 100-record batches at concurrency 8. Prints req/s, p50, p99, records/s and the ratios.
Also measures TCP_NODELAY with 2 workers (uvicorn#3149: a ~44 ms p50 at c=1 is the symptom): on the
asyncio loop with uvicorn's protocol, with ours (serve/server.py), and on uvloop.

Usage: python scripts/bench_serve.py [--duration 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serve.scoring import Scorer
from serve.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # devtools/ is not in the wheel: import it from the checkout
from devtools.services import free_port  # noqa: E402

BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python") if (BIN / "python").exists() else sys.executable

CONSTANT_APP = """
from fastapi import FastAPI, Request, Response

app = FastAPI()
BODY = b'{"predictions":[{"probability":0.5,"decision":"approve"}]}'


@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")
"""

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}"):read("*a")
"""


@dataclass
class Result:
    req_s: float
    p50_ms: float
    p99_ms: float
    records_s: float
    errors: int


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as r,  # noqa: S310 (loopback only)
        ):
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    path = f"{BIN}:{os.environ.get('PATH', '')}"  # `mlflow models serve` execs uvicorn
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, "PATH": path, **env},
            stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_ready(ready_url, proc)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m.group(1)), m.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def wrk(url: str, body: Path, concurrency: int, duration: int, records: int) -> Result:
    script = body.with_suffix(".lua")
    script.write_text(LUA.format(body=body))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    req_s = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    try:
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError):  # no request completed (a very slow server)
        p50 = p99 = float("nan")
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Result(req_s, p50, p99, req_s * records, errors)


def train(home: Path, log: Path) -> tuple[str, str]:
    env = {**os.environ, "ML_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("ab") as out:
        subprocess.run(
            [str(BIN / "mlops"), "train", "--model", "xgboost"], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    uri = f"sqlite:///{home / 'mlflow.db'}"
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    version = max(int(v.version) for v in client.search_model_versions("name='credit-risk'"))
    client.set_registered_model_alias("credit-risk", "production", str(version))
    return uri, str(version)


def bodies(tmp: Path, uri: str, version: str) -> dict[str, Path]:
    """Request bodies from the model's own input example (real rows)."""
    import mlflow.artifacts

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/credit-risk/{version}", dst_path=str(tmp / "m"), tracking_uri=uri
        )
    )
    example = json.loads((local / "input_example.json").read_text())
    columns, rows = example["columns"], example["data"]
    batch = [rows[i % len(rows)] for i in range(100)]
    files = {
        "ours-1": {"records": [dict(zip(columns, rows[0], strict=True))]},
        "ours-100": {"records": [dict(zip(columns, r, strict=True)) for r in batch]},
        "mlflow-1": {"dataframe_split": {"columns": columns, "data": [rows[0]]}},
        "mlflow-100": {"dataframe_split": {"columns": columns, "data": batch}},
    }
    out = {}
    for name, body in files.items():
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(body))
        out[name] = path
    out["const-1"], out["const-100"] = out["ours-1"], out["ours-100"]
    return out


SCENARIOS = [
    ("single c=1", 1, 1),
    ("single c=8", 8, 1),
    ("single c=32", 32, 1),
    ("batch100 c=8", 8, 100),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="Seconds per load run.")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for every server.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    log = tmp / "bench.log"
    print(f"training the XGBoost champion into {tmp} (log: {log}) ...", flush=True)
    uri, version = train(tmp / "store", log)
    files = bodies(tmp, uri, version)
    print(f"serving credit-risk version {version}, {args.duration}s per run", flush=True)
    # The same setting the served process resolves (it gets the same SERVE_* environment).
    threads = ServeSettings(tracking_uri=uri, workers=args.workers).scoring_thread_count()
    print(
        f"XGBoost threads: ours 1 per prediction, on {threads} scoring thread(s) for "
        f"{Scorer.OFFLOAD_BATCH}+ records (SERVE_SCORING_THREADS default); mlflow's booster its "
        "default (every core)",
        flush=True,
    )

    results: dict[str, dict[str, Result]] = {}
    servers = {
        "ours": lambda port: (
            [PY, "-m", "serve"],
            {
                "MLFLOW_TRACKING_URI": uri, "SERVE_PORT": str(port),
                "SERVE_WORKERS": str(args.workers), "SERVE_POLL_INTERVAL": "30",
            },
            f"http://127.0.0.1:{port}/ready",
        ),
        "mlflow": lambda port: (
            [str(BIN / "mlflow"), "models", "serve", "--env-manager", "local", "-m",
             f"models:/credit-risk/{version}", "-h", "127.0.0.1", "-p", str(port),
             "-w", str(args.workers)],
            {"MLFLOW_TRACKING_URI": uri},
            f"http://127.0.0.1:{port}/ping",
        ),
        "const": lambda port: (
            [PY, "-m", "uvicorn", "const_app:app", "--app-dir", str(tmp), "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(args.workers), "--http", "httptools",
             "--loop", "uvloop", "--no-access-log", "--log-level", "warning"],
            {},
            f"http://127.0.0.1:{port}/docs",
        ),
    }  # fmt: skip
    (tmp / "const_app.py").write_text(CONSTANT_APP)
    for name, spec in servers.items():
        port = free_port()
        cmd, env, ready = spec(port)
        endpoint = f"http://127.0.0.1:{port}/" + ("invocations" if name == "mlflow" else "predict")
        with process(cmd, env, ready, tmp / f"{name}.log"):
            results[name] = {}
            for label, conc, records in SCENARIOS:
                body = files[f"{name}-{records}"]
                wrk(endpoint, body, conc, 2, records)  # warm-up
                results[name][label] = wrk(endpoint, body, conc, args.duration, records)
                r = results[name][label]
                print(
                    f"  {name:6} {label:13} {r.req_s:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
                    f"p99 {r.p99_ms:7.2f} ms  {r.records_s:9.0f} rec/s  errors {r.errors}",
                    flush=True,
                )

    print(
        "\n| scenario | server | req/s | p50 ms | p99 ms | records/s | x mlflow req/s | "
        "mlflow p99 / ours | ours / const req/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, _, _ in SCENARIOS:
        ours, ml, const = (results[n][label] for n in ("ours", "mlflow", "const"))
        for name, r in (("ours", ours), ("mlflow", ml), ("const", const)):
            ratio = f"{ours.req_s / ml.req_s:.1f}x" if name == "ours" else ""
            p99 = f"{ml.p99_ms / ours.p99_ms:.1f}x" if name == "ours" else ""
            vs_const = f"{ours.req_s / const.req_s:.2f}" if name == "ours" else ""
            print(f"| {label} | {name} | {r.req_s:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                  f"{r.records_s:.0f} | {ratio} | {p99} | {vs_const} |")  # fmt: skip

    # uvloop sets TCP_NODELAY on its TCP transports itself; the asyncio loop leaves it off on
    # the connections a worker accepts, which is where uvicorn#3149 shows.
    print("\nTCP_NODELAY with 2 workers, single record at c=1 (uvicorn#3149):")
    for loop, http in (
        ("asyncio", "httptools"),
        ("asyncio", "serve.server:NoDelayHttpToolsProtocol"),
        ("uvloop", "httptools"),
    ):
        port = free_port()
        cmd = [
            PY, "-m", "uvicorn", "serve.app:factory", "--factory", "--workers", "2",
            "--loop", loop, "--http", http, "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        env = {"MLFLOW_TRACKING_URI": uri, "SERVE_POLL_INTERVAL": "30"}
        with process(cmd, env, f"http://127.0.0.1:{port}/ready", tmp / "nd.log"):
            time.sleep(2)  # both workers up
            url = f"http://127.0.0.1:{port}/predict"
            r = wrk(url, files["ours-1"], 1, args.duration, 1)
            print(f"  --loop {loop:7} --http {http:38} {r.req_s:8.0f} req/s  "
                  f"p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
