"""What reason codes cost: /predict for one declined record with and without `?reasons=true`
(in-process, through the ASGI app), and `mlops predict` rows/s with and without `--reasons`.

Trains the XGBoost champion (config/train.yaml, the repository's governance) into a temporary
store, serves it from a model directory as a volume mount would, and scores a file of
resampled rows. Each /predict figure is the best of several repeats, in µs per request.

Usage: python scripts/bench_reasons.py [--rows 200000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows scored by mlops predict")
    parser.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the store here and reuse its champion"
    )
    args = parser.parse_args()
    os.chdir(ROOT)

    import numpy as np
    import pandas as pd
    from fastapi.testclient import TestClient

    from ml.batch import ModelRef, predict
    from ml.contract import CONTRACT_FILE
    from ml.features import FEATURE_COLUMNS
    from ml.registry import Registry
    from ml.settings import MLSettings
    from ml.train import train
    from serve.app import create_app
    from serve.settings import ServeSettings

    with tempfile.TemporaryDirectory(prefix="bench-reasons-") as tmp_name:
        tmp = Path(tmp_name)
        home = (args.workdir or tmp) / "home"
        settings = MLSettings(home=home)  # the embedded SQLite store
        registry = Registry(settings.resolved_tracking_uri())
        trained = registry.versions("credit-risk") if (home / "mlflow.db").exists() else []
        info = trained[-1] if trained else train(settings, ["xgboost"]).version
        version = info.version
        model_dir = registry.download_version("credit-risk", version, tmp / "model")
        registry.download_run_file(str(info.run_id), CONTRACT_FILE, model_dir)

        data = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz")
        declined = data[data["PAY_0"] >= 2].iloc[0]
        record = {
            c.name: int(declined[c.name]) if c.dtype == "int" else float(declined[c.name])
            for c in FEATURE_COLUMNS
        }
        body = {"records": [record]}
        app = create_app(ServeSettings(model_path=model_dir, log_predictions=False))
        with TestClient(app) as client:
            deadline = time.monotonic() + 60
            while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            answer = client.post("/predict?reasons=true", json=body).json()
            if answer.get("predictions", [{}])[0].get("decision") != "decline":
                raise SystemExit(f"expected one explained decline, got {answer}")
            figures = {}
            for label, url in (("without", "/predict"), ("with", "/predict?reasons=true")):

                def call(target: str = url) -> None:
                    client.post(target, json=body)

                best = min(timeit.repeat(call, number=args.requests, repeat=5))
                figures[label] = best / args.requests * 1e6
        ratio = figures["with"] / figures["without"]
        print(
            f"/predict, one declined record, in-process: without reasons "
            f"{figures['without']:.0f} µs, with reasons {figures['with']:.0f} µs ({ratio:.2f}x)"
        )

        rng = np.random.default_rng(0)
        rows = data.iloc[rng.integers(0, len(data), args.rows)].reset_index(drop=True)
        rows["ID"] = np.arange(len(rows))
        source = tmp / "rows.parquet"
        rows.drop(columns=["target"]).to_parquet(source, index=False)
        rates = {}
        for label, reasons in (("without", False), ("with", True)):
            summary = predict(
                registry,
                ModelRef("credit-risk", version=version),
                str(source),
                tmp / f"out-{label}.parquet",
                reasons=reasons,
            )
            rates[label] = summary.rows / summary.scoring_seconds
        declines = float((pd.read_parquet(tmp / "out-with.parquet")["probability"] >= 0.5).mean())
        print(
            f"mlops predict, {args.rows:,} rows ({declines:.1%} declined, explained): "
            f"without reasons {rates['without']:,.0f} rows/s, with reasons "
            f"{rates['with']:,.0f} rows/s ({rates['with'] / rates['without']:.0%})"
        )


if __name__ == "__main__":
    main()
