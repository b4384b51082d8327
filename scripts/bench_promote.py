"""Benchmark `mlops promote apply`: 20 models x 2 environments against a local `mlflow server`,
this checkout against a baseline commit, interleaved in one run.

Starts `mlflow server` as the mlflow image runs it (SQLite, served artifacts, MLflow's default 4
workers, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: its job workers slow every registry call 2-3x
on this machine; export it as true to see that) on a free 127.0.0.1 port, and registers 20 tiny
models (one logged artifact, 20 registered names) for every measured run: XGBoost boosters
logged as ml.train logs the champion (BENCH_FLAVOR=xgboost, the default), or scikit-learn
logistic regressions (BENCH_FLAVOR=sklearn: the loadable gate then loads them through
mlflow.pyfunc, whose imports, skops' included, take seconds in each process). Each run is a fresh
process importing `ml` from its source (this checkout, or `git archive` of the baseline commit,
`--baseline`, default BENCH_BASELINE or none): it applies staging and production with the gates
on and the engine's default concurrency (ML_PROMOTE_WORKERS), then once more to show the
idempotent no-op. Each apply gets its own `VerdictCache` over one fresh folder, as two `mlops
promote apply` processes on one machine share `ML_PROMOTE_VERDICT_CACHE`. Runs alternate
(baseline, this, baseline, this, ... `BENCH_ROUNDS` rounds, default 2) against the one server,
so a loaded machine slows both alike: the ratio of the medians is the figure. Prints wall time
and REST calls per model, counted at the `requests` level (every MLflow REST and artifact call
goes through it), and the load average. The lease's settle wait (ML_PROMOTE_LEASE_SETTLE, 0.2 s
per apply) is included.

    make bench-promote                                  # this checkout alone
    BENCH_BASELINE=4f1c685 make bench-promote           # against a commit, interleaved
    BENCH_FLAVOR=sklearn BENCH_BASELINE=4f1c685 make bench-promote   # scikit-learn models
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = int(os.environ.get("BENCH_MODELS", "20"))
FLAVOR = os.environ.get("BENCH_FLAVOR", "xgboost")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SERVER_WORKERS = 4  # `mlflow server`'s default
GATES = (
    "defaults:\n  required_tags: [git_sha, data_sha256]\n"
    "  floors: {roc_auc: 0.75}\n  max_regression: {roc_auc: 0.005}\n"
)


def _register(uri: str, names: list[str], flavor: str) -> None:
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
    y = (x["a"] > 0).astype(int)
    # Its own contract, as ml.train logs one (the signature and loadable gates read it).
    contract = ModelContract(tuple(Feature(f, "float", reason="bench model") for f in x.columns))
    with registry.fluent():
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_metrics({"roc_auc": 0.78, "ks": 0.4, "brier": 0.13})
            mlflow.log_dict(contract.to_dict(), CONTRACT_FILE)
            if flavor == "xgboost":
                # as ml.train logs the champion: the native booster, which serve and the
                # loadable gate load without MLflow, pandas or scikit-learn
                import xgboost

                booster = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
                info = mlflow.xgboost.log_model(
                    booster,
                    name="model",
                    signature=infer_signature(x.head(3), booster.predict_proba(x.head(3))[:, 1]),
                    input_example=x.head(3),
                    model_format="ubj",
                    pip_requirements=["xgboost"],
                )
            else:
                model = LogisticRegression().fit(x, y)
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(x.head(3), model.predict_proba(x.head(3))[:, 1]),
                    pip_requirements=["scikit-learn"],
                )
        tags = {"git_sha": "bench", "data_sha256": "0" * 64}
        for name in names:
            mlflow.register_model(info.model_uri, name, tags=tags, await_registration_for=60)


def run_once(uri: str, names: list[str], base: Path) -> dict[str, Any]:
    """In a child process whose `ml` is the source measured: first and no-op applies."""
    import requests

    from ml.promotions.apply import ApplyContext, ApplyOptions, apply_spec
    from ml.promotions.config import PromotionSettings
    from ml.promotions.gates import VerdictCache, load_gates
    from ml.promotions.reconcile import desired_from
    from ml.promotions.spec import load_spec
    from ml.registry import Registry

    calls: collections.Counter[str] = collections.Counter()
    original = requests.Session.request

    def counting(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        key = f"{method} {url.split('/api/')[-1].split('?')[0]}"
        if "/artifacts/" in key:
            key = key.split("/artifacts/")[0] + "/artifacts/<path>"
        calls[key] += 1
        return original(self, method, url, *args, **kw)

    settings = PromotionSettings()
    spec = base / "promotions.yaml"
    spec.write_text("models:\n" + "".join(f"  {n}:\n    version: 1\n" for n in names))
    gates = base / "gates.yaml"
    gates.write_text(GATES)
    desired, gates_file = desired_from(load_spec(spec)), load_gates(gates)
    ctx = ApplyContext.from_env(git_sha_="bench", actor="bench", pr="0")
    registry = Registry(uri)
    requests.Session.request = counting  # type: ignore[method-assign,assignment]
    out: dict[str, Any] = {"workers": settings.workers}
    # the engine reaches a tracking server over REST; only a pyfunc load imports MLflow
    imported = "mlflow" in sys.modules
    for label in ("first", "noop"):
        calls.clear()
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        computed = 0
        for env in ("staging", "production"):
            cache = VerdictCache(base / "verdicts")  # one per process, as the CLI's
            options = ApplyOptions(
                workers=settings.workers, settle=settings.lease_settle, cache=cache
            )
            apply_spec(registry, desired, env, ctx, gates=gates_file, options=options)
            computed += cache.computed
        out[label] = {
            "wall": time.perf_counter() - t0,
            "calls": sum(calls.values()),
            "computed": computed,
            "load": (load + os.getloadavg()[0]) / 2,
            "by_call": dict(sorted(calls.items())),
            "mlflow": "mlflow" in sys.modules and not imported,
        }
    return out


def _source(ref: str, into: Path) -> Path:
    """The tree of commit `ref` (its `ml` package and what it imports), without a worktree."""
    archive = into / "baseline.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", ref, "ml", "serve"], cwd=ROOT, stdout=fh, check=True)
    tree = into / "baseline"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _child(source: Path, uri: str, names: list[str], base: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    args = [sys.executable, __file__, "--child", uri, str(base), *names]
    done = subprocess.run(args, env=env, cwd=base, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run from {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(label: str, r: dict[str, Any], workers: int) -> str:
    return (
        f"{label} ({workers} workers, load {r['load']:.1f}): {MODELS} models x 2 envs in "
        f"{r['wall']:.2f} s; {r['calls']} REST calls = {r['calls'] / MODELS:.1f} per model "
        f"({r['calls'] / MODELS / 2:.1f} per model-env); {r['computed']} verdicts computed"
        + ("; imported MLflow" if r.get("mlflow") else "")
    )


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=os.environ.get("BENCH_BASELINE") or None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        uri, base, *names = args.child
        print(json.dumps(run_once(uri, names, Path(base))))
        return

    sys.path.insert(0, str(ROOT))  # run as `python scripts/bench_promote.py` from a checkout
    from devtools.services import start_mlflow_server, stop_mlflow_server

    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # as in the mlflow image
    with tempfile.TemporaryDirectory(prefix="bench-promote-") as tmp:
        base = Path(tmp)
        sources = [("this checkout", ROOT)]
        if args.baseline:
            sources.insert(0, (f"baseline {args.baseline}", _source(args.baseline, base)))
        server = start_mlflow_server(
            f"sqlite:///{base / 'mlflow.db'}", base, timeout_s=600, workers=SERVER_WORKERS
        )
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in sources}
        try:
            for round_ in range(ROUNDS):
                for i, (label, source) in enumerate(sources):
                    names = [f"bench-r{round_}-s{i}-{m:02d}" for m in range(MODELS)]
                    t0 = time.perf_counter()
                    _register(server.uri, names, FLAVOR)
                    print(f"round {round_ + 1}, {label}: registered {MODELS} {FLAVOR} models in "
                          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
                    run_dir = base / f"run-{round_}-{i}"
                    run_dir.mkdir()
                    r = _child(source, server.uri, names, run_dir)
                    results[label].append(r)
                    for kind, shown in (("first", "first apply"), ("noop", "no-op apply")):
                        print("  " + _line(shown, r[kind], r["workers"]), flush=True)
        finally:
            stop_mlflow_server(server)
        print("\nmedians over the rounds:")
        medians = {}
        for label, runs in results.items():
            wall = statistics.median(r["first"]["wall"] for r in runs)
            calls = statistics.median(r["first"]["calls"] for r in runs) / MODELS
            noop = statistics.median(r["noop"]["wall"] for r in runs)
            medians[label] = wall
            print(f"  {label}: first apply {wall:.2f} s, {calls:.1f} REST calls per model; "
                  f"no-op {noop:.2f} s")  # fmt: skip
            last = runs[-1]["first"]["by_call"]
            for call, count in last.items():
                print(f"      {count:4d}  {call}")
        if args.baseline:
            ratio = medians["this checkout"] / medians[sources[0][0]]
            print(f"first apply, this checkout / baseline: {ratio:.2f} (goal ≤ 0.50)")


if __name__ == "__main__":
    main()
