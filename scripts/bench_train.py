"""Benchmark: wall time, peak memory and AUC of train + register on the full 30,000 rows.

Runs against a fresh SQLite store in a temporary directory so the figure includes creating the
store, both candidates, all artifacts and the registration. Goal: <= 60 s on 2 cores.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from ml.settings import MLSettings
from ml.train import train


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        settings = MLSettings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", home=Path(tmp))
        start = time.perf_counter()
        result = train(settings, ["xgboost", "logreg"])
        wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows                 {result.snapshot.rows}")
    for candidate in result.candidates:
        print(f"{candidate.kind:<8} ROC-AUC      {candidate.evaluation.roc_auc:.4f}")
    print(f"champion             {result.champion.kind} -> version {result.version.version}")
    print(f"wall time            {wall:.1f} s (goal <= 60 s)")
    print(f"peak memory (RSS)    {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
