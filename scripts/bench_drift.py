"""Benchmark the drift job on 1,000,000 logged predictions: wall time and peak RSS.

The log is written by serve's own writer (`serve.logging.PredictionLog`), one record per line,
the worst case for the reader (a line per request); the rows are the real data set resampled with
replacement. The job runs as it does in the nightly workflow, as a `mlops monitor drift` process,
against a reference parquet file (the registry download of a 24,000-row reference is not what is
measured here). Goal: <= 60 s and <= 2 GiB.

    make bench-drift                      # 1,000,000 predictions
    python scripts/bench_drift.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_S = 60.0
GOAL_RSS_GIB = 2.0


def write_inputs(base: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """The prediction log (cached per row count) and a 24,000-row reference parquet."""
    import numpy as np
    import pandas as pd

    from ml.features import FEATURES
    from ml.monitoring.reference import build_reference
    from serve.logging import PredictionLog
    from serve.request_parser import ParsedRequest

    base.mkdir(parents=True, exist_ok=True)
    data = pd.read_csv(ROOT / "data" / "uci_credit_card.csv.gz")[FEATURES]
    rng = np.random.default_rng(seed)
    reference = base / "reference.parquet"
    ref_rows = data.sample(n=24_000, random_state=seed)
    build_reference(ref_rows, rng.beta(2, 6, len(ref_rows))).to_parquet(reference)
    log = base / f"predictions-{rows}.log"
    if log.exists():
        return log, reference
    sample = data.sample(n=rows, replace=True, random_state=seed + 1)
    records = sample.to_dict("records")
    scores = rng.beta(2, 6, rows)
    empty = np.zeros((1, 1), dtype=np.float32)
    tmp = log.with_suffix(".partial")
    with tmp.open("w") as fh:
        writer = PredictionLog(fh)
        for i, (record, score) in enumerate(zip(records, scores, strict=True)):
            writer.write(
                rid=f"bench-{i}",
                model_name="credit-risk",
                model_version="7",
                request=ParsedRequest([record], empty),
                probabilities=np.asarray([score]),
                decisions=["decline" if score >= 0.5 else "approve"],
                latency_s=0.0012,
            )
    tmp.rename(log)
    return log, reference


def run_job(log: Path, reference: Path, out: Path) -> tuple[int, float, float, float]:
    """Exit code, wall seconds, CPU seconds and peak RSS (GiB) of one `mlops monitor drift`."""
    mlops = Path(sys.executable).parent / "mlops"
    cmd = [str(mlops), "monitor", "drift", "--logs", str(log), "--reference", str(reference),
           "--out", str(out)]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 15):
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    cpu = usage.ru_utime + usage.ru_stime
    return proc.returncode, wall, cpu, usage.ru_maxrss / (1024 * 1024)  # ru_maxrss: KiB


def main(argv: list[str] | None = None) -> int:
    """Write the inputs, run the job once, print the figures (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=ROOT / "build" / "bench-drift")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    log, reference = write_inputs(args.dir, args.rows, args.seed)
    print(
        f"inputs: {log.stat().st_size / 1e6:.0f} MB of logs ({args.rows} predictions), "
        f"written or reused in {time.perf_counter() - started:.1f} s"
    )
    load_before = os.getloadavg()[0]
    code, wall, cpu, rss = run_job(log, reference, args.dir / "out")
    summary = json.loads((args.dir / "out" / "drift-summary.json").read_text())
    load = max(load_before, os.getloadavg()[0])
    print(
        f"drift job: exit {code}, wall {wall:.1f} s (CPU {cpu:.1f} s), peak RSS {rss:.2f} GiB; "
        f"{summary['rows']['current']} rows read, "
        f"{summary['rows']['current_sampled']} sampled for the statistical tests, "
        f"comparison {summary['seconds']:.1f} s; load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    ok = code in (0, 15) and wall <= GOAL_S and rss <= GOAL_RSS_GIB
    print(f"goal <= {GOAL_S:.0f} s and <= {GOAL_RSS_GIB:.0f} GiB: {'met' if ok else 'NOT met'}")
    return 0 if code in (0, 15) else 1


if __name__ == "__main__":
    sys.exit(main())
