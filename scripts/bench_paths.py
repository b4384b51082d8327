"""Micro-benchmarks of serve's fast paths against what each replaced, in one process.

The figures in docs/performance.md come from here: request parsing (msgspec vs the pydantic
model), the contract check, the prediction log line (direct write vs the logging module), the
three ways to score a few records (numpy tree walk, XGBoost's C API with a kept proxy,
Booster.inplace_predict), FastAPI dependencies vs app.state, and the full garbage collection that
`settle_heap` moves to the model swap. Each figure is the best of several repeats, in µs per call.

Trains the XGBoost champion (800 trees, depth 5) into a temporary store unless --model-dir names
an MLflow model directory. Pin it to one core for steadier numbers: `taskset -c 1 ...`.

Usage: python scripts/bench_paths.py [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import logging
import os
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

from ml.features import CONTRACT  # noqa: E402


def best_us(fn: Callable[[], object], number: int) -> float:
    """Best of 7 repeats, µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def row(label: str, *figures: tuple[str, float]) -> None:
    cells = "  ".join(f"{name} {value:9.1f} µs" for name, value in figures)
    print(f"  {label:34} {cells}", flush=True)


def champion_dir(tmp: Path) -> Path:
    """Train the champion into a temporary embedded store and download its model directory."""
    from bench_serve import train  # the same champion as make bench-serve

    from ml.registry import Registry

    uri, version = train(tmp / "store", tmp / "train.log")
    return Registry(uri).download_version("credit-risk", int(version), tmp / "model")


def records(n: int) -> list[dict[str, Any]]:
    """n in-contract records of the real data."""
    import pandas as pd

    frame = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz", nrows=n)
    out = []
    for _, r in frame.iterrows():
        out.append(
            {
                f.name: (int(r[f.name]) if f.dtype == "int" else float(r[f.name]))
                for f in CONTRACT.features
            }
        )
    return out


def parsing(model_dir: Path) -> None:
    from serve.predictor import read_mlmodel, signature_of
    from serve.request_parser import RequestParser

    columns, _ = signature_of(read_mlmodel(model_dir))
    parser = RequestParser(columns, 1000, CONTRACT)
    print("request body → float32 matrix (serve/request_parser.py)")
    for n in (1, 100):
        body = json.dumps({"records": records(n)}).encode()
        number = 20000 if n == 1 else 1000

        def pydantic_only(body: bytes = body) -> None:
            parsed = parser.request_model.model_validate_json(body)
            rows = [[getattr(r, c.name) for c in columns] for r in parsed.records]  # type: ignore[attr-defined]
            np.array(rows, dtype=np.float32)

        row(
            f"{n} record(s)",
            ("msgspec+contract", best_us(partial(parser.parse, body), number)),
            ("pydantic", best_us(pydantic_only, number)),
        )
        matrix = parser.parse(body).matrix
        row(
            f"  contract.check_matrix, {n}",
            ("numpy", best_us(partial(CONTRACT.check_matrix, matrix), 20000)),
        )


def log_line() -> None:
    from serve.logging import PredictionLog
    from serve.request_parser import ParsedRequest

    print("prediction log line (serve/logging.py)")
    sink = io.StringIO()
    direct = PredictionLog(stream=sink)
    logger = logging.getLogger("bench.paths")
    logger.handlers = [logging.StreamHandler(sink)]
    logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    logger.propagate = False
    for n in (1, 100):
        recs = records(n)
        raw = json.dumps(recs).encode()
        parsed = ParsedRequest(recs, np.zeros((n, 23), np.float32), raw)
        probabilities = np.full(n, 0.3)
        decisions = ["approve"] * n

        def via_logging(
            recs: list[dict[str, Any]] = recs,
            p: np.ndarray = probabilities,
            d: list[str] = decisions,
        ) -> None:
            line: dict[str, Any] = {"request_id": "x", "model_version": "4", "features": recs}
            line.update(probability=p.tolist(), decision=d, latency_ms=1.0)
            logger.info(json.dumps(line))

        def via_direct(
            parsed: ParsedRequest = parsed, p: np.ndarray = probabilities, d: list[str] = decisions
        ) -> None:
            direct.write(
                rid="x", model_name="credit-risk", model_version="4", request=parsed,
                probabilities=p, decisions=d, latency_s=0.001,
            )  # fmt: skip

        number = 20000 if n == 1 else 2000
        row(
            f"{n} record(s)",
            ("direct+msgspec", best_us(via_direct, number)),
            ("logging+json", best_us(via_logging, number)),
        )
        sink.seek(0)
        sink.truncate()


def predictors(model_dir: Path) -> None:
    import xgboost as xgb

    from serve.tree_ensemble import compile_ensemble
    from serve.xgboost_inplace import checked_inplace

    booster = xgb.Booster()
    booster.load_model(str(model_dir / "model.ubj"))
    booster.set_param({"nthread": 1})
    walk = compile_ensemble(booster)
    c_api = checked_inplace(booster)
    assert walk is not None
    assert c_api is not None
    print(f"scoring, one XGBoost thread ({booster.num_boosted_rounds()} trees)")
    for n in (1, 12, 100):
        x = np.array([[r[f.name] for f in CONTRACT.features] for r in records(n)], np.float32)
        number = 5000 if n < 100 else 1000
        row(
            f"{n} record(s)",
            ("tree walk", best_us(partial(walk.predict, x), number)),
            ("C API", best_us(partial(c_api, x), number)),
            ("inplace_predict", best_us(partial(booster.inplace_predict, x), number)),
        )


def dependencies() -> None:
    from fastapi import Depends, FastAPI, Request

    app = FastAPI()
    app.state.values = {f"d{i}": i for i in range(5)}

    def dep(i: int) -> Callable[[Request], Any]:
        async def get(request: Request) -> int:
            return int(request.app.state.values[f"d{i}"])

        return get

    @app.get("/deps")
    async def with_deps(
        a: int = Depends(dep(0)), b: int = Depends(dep(1)), c: int = Depends(dep(2)),
        d: int = Depends(dep(3)), e: int = Depends(dep(4)),
    ) -> int:  # fmt: skip
        return a + b + c + d + e

    @app.get("/state")
    async def with_state(request: Request) -> int:
        v = request.app.state.values
        return int(v["d0"] + v["d1"] + v["d2"] + v["d3"] + v["d4"])

    async def call(path: str) -> None:
        scope = {
            "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": [], "app": app, "http_version": "1.1",
            "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": "",
        }  # fmt: skip

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            return None

        await app(scope, receive, send)

    async def loop(path: str, n: int) -> float:
        best = float("inf")
        for _ in range(7):
            started = time.perf_counter()
            for _ in range(n):
                await call(path)
            best = min(best, (time.perf_counter() - started) / n * 1e6)
        return best

    print("FastAPI: five dependencies vs app.state, whole ASGI call (serve/routes/predict.py)")
    row(
        "GET, no body",
        ("app.state", asyncio.run(loop("/state", 2000))),
        ("5 Depends", asyncio.run(loop("/deps", 2000))),
    )


def full_collection(model_dir: Path) -> None:
    import mlflow.tracking  # noqa: F401  (what a serving process holds)

    import serve.app  # noqa: F401
    from serve.model_store import load_from_path

    load_from_path(model_dir, max_batch=1000)
    gc.collect()
    started = time.perf_counter()
    gc.collect()
    unfrozen = (time.perf_counter() - started) * 1e6
    gc.freeze()
    started = time.perf_counter()
    gc.collect()
    frozen = (time.perf_counter() - started) * 1e6
    gc.unfreeze()
    print(f"full garbage collection with the app loaded ({len(gc.get_objects()):,} objects)")
    row("gc.collect()", ("as is", unfrozen), ("after freeze", frozen))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="An MLflow xgboost model directory.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-paths-") as tmp:
        model_dir = args.model_dir or champion_dir(Path(tmp))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
        parsing(model_dir)
        log_line()
        predictors(model_dir)
        dependencies()
        full_collection(model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
