"""Benchmark `mlops promote apply`: 20 models x 2 environments against a local `mlflow server`.

Starts `mlflow server` as the mlflow image runs it (SQLite, served artifacts, MLflow's default 4
workers, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: its job workers slow every registry call 2-3x
on this machine; export it as true to see that) on a free 127.0.0.1 port, registers 20 tiny
models (one logged artifact, 20 registered names), then applies staging and production with the
gates on and the engine's default concurrency (ML_PROMOTE_WORKERS), and once more to show the
idempotent no-op. Each apply gets its own `VerdictCache` over one fresh folder, as two
`mlops promote apply` processes on one machine share `ML_PROMOTE_VERDICT_CACHE`: production's
apply reuses the verdicts staging's computed (production did not move in between). Prints wall
time and REST calls per model, counted at the `requests` level
(every MLflow REST and artifact call goes through it). The lease's settle wait
(ML_PROMOTE_LEASE_SETTLE, 0.2 s per apply) is included.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python scripts/bench_promote.py` from a checkout

MODELS = int(os.environ.get("BENCH_MODELS", "20"))
SERVER_WORKERS = 4  # `mlflow server`'s default
CALLS: collections.Counter[str] = collections.Counter()
SECONDS: dict[str, float] = collections.defaultdict(float)
_original = requests.Session.request


def _counting(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
    key = f"{method} {url.split('/api/')[-1].split('?')[0]}"
    if "/artifacts/" in key:
        key = key.split("/artifacts/")[0] + "/artifacts/<path>"
    CALLS[key] += 1
    start = time.perf_counter()
    try:
        return _original(self, method, url, *args, **kw)
    finally:
        SECONDS[key] += time.perf_counter() - start


def _register(uri: str, names: list[str]) -> None:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from ml.contract import CONTRACT_FILE, Feature, ModelContract
    from ml.registry import Registry

    registry = Registry(uri)
    experiment = registry.ensure_experiment("bench-promote", None)
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    # Its own contract, as ml.train logs one (the signature and loadable gates read it).
    contract = ModelContract(tuple(Feature(f, "float", reason="bench model") for f in x.columns))
    with registry.fluent():
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_metrics({"roc_auc": 0.78, "ks": 0.4, "brier": 0.13})
            mlflow.log_dict(contract.to_dict(), CONTRACT_FILE)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x.head(3), model.predict_proba(x.head(3))[:, 1]),
                pip_requirements=["scikit-learn"],
            )
        tags = {"git_sha": "bench", "data_sha256": "0" * 64}
        for name in names:
            mlflow.register_model(info.model_uri, name, tags=tags, await_registration_for=60)


def main() -> None:
    """Run the benchmark and print the figures."""
    from ml.devservices import start_mlflow_server, stop_mlflow_server
    from ml.promotions.apply import ApplyContext, ApplyOptions, apply_spec
    from ml.promotions.config import PromotionSettings
    from ml.promotions.gates import VerdictCache, load_gates
    from ml.promotions.reconcile import desired_from
    from ml.promotions.spec import load_spec
    from ml.registry import Registry

    settings = PromotionSettings()
    workers = settings.workers
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # as in the mlflow image
    with tempfile.TemporaryDirectory(prefix="bench-promote-") as tmp:
        base = Path(tmp)
        server = start_mlflow_server(
            f"sqlite:///{base / 'mlflow.db'}", base, timeout_s=600, workers=SERVER_WORKERS
        )
        uri = server.uri
        try:
            names = [f"bench-{i:02d}" for i in range(MODELS)]
            t0 = time.perf_counter()
            _register(uri, names)
            print(f"setup: registered {MODELS} models in {time.perf_counter() - t0:.1f} s")
            spec = base / "promotions.yaml"
            spec.write_text(
                "models:\n" + "".join(f"  {n}:\n    version: 1\n" for n in names), encoding="utf-8"
            )
            gates = base / "gates.yaml"
            gates.write_text(
                "defaults:\n  required_tags: [git_sha, data_sha256]\n"
                "  floors: {roc_auc: 0.75}\n  max_regression: {roc_auc: 0.005}\n"
            )
            desired, gates_file = desired_from(load_spec(spec)), load_gates(gates)
            ctx = ApplyContext.from_env(git_sha_="bench", actor="bench", pr="0")
            registry = Registry(uri)
            requests.Session.request = _counting  # type: ignore[method-assign,assignment]
            verdicts = base / "verdicts"  # empty: the first apply computes every verdict
            for label in ("first apply", "second apply (no-op)"):
                CALLS.clear()
                SECONDS.clear()
                t0 = time.perf_counter()
                computed = 0
                for env in ("staging", "production"):
                    cache = VerdictCache(verdicts)  # one per process, as the CLI's
                    options = ApplyOptions(
                        workers=workers, settle=settings.lease_settle, cache=cache
                    )
                    apply_spec(registry, desired, env, ctx, gates=gates_file, options=options)
                    computed += cache.computed
                wall = time.perf_counter() - t0
                total = sum(CALLS.values())
                print(
                    f"{label} ({workers} workers): {MODELS} models x 2 envs in {wall:.2f} s; "
                    f"{total} REST calls "
                    f"= {total / MODELS:.1f} per model ({total / MODELS / 2:.1f} per model-env); "
                    f"{computed} verdicts computed"
                )
                for call, count in sorted(CALLS.items()):
                    print(f"    {count:4d}  {SECONDS[call]:6.2f} s  {call}")
        finally:
            stop_mlflow_server(server)


if __name__ == "__main__":
    main()
