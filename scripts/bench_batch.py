"""Benchmark: `mlops predict` vs `mlflow models predict` vs the in-memory limit, on one file.

Trains the XGBoost champion on the full data into a temporary embedded store (`mlops train
--model xgboost`), replicates the 30,000 rows to 1,000,000 (and 10,000,000, for memory) in a CSV
under the work directory (a cache outside git, reused by later runs), then runs, each in its own
process so that its peak RSS is its own (os.wait4):

- `mlops predict --model credit-risk/N --input FILE --output OUT.parquet` (whole process: start-up,
  model download, reading, contract, scoring, writing);
- `mlflow models predict -m models:/credit-risk/N -i FILE -t csv --env-manager local` (the same
  model and file; local environment, as no virtualenv can be built without network);
- the limit: `Booster.inplace_predict` on the whole matrix, already in memory, every core
  (only the prediction is timed).

Prints rows/s and peak RSS of each, and the goals: mlops predict >= 20x mlflow models predict and
>= 0.5 of the limit on 1M rows; peak RSS <= 1 GiB on 10M rows.

Usage: python scripts/bench_batch.py [--rows 1000000] [--big-rows 10000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_serve import train  # noqa: E402 - the same champion, trained the same way

BIN = ROOT / ".venv" / "bin"
PY = str(BIN / "python") if (BIN / "python").exists() else sys.executable
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
GIB = 1 << 30

LIMIT_SCRIPT = """
import json, sys, time
import numpy as np, pyarrow.csv as pcsv, xgboost as xgb
booster = xgb.Booster()
booster.load_model(sys.argv[1])
table = pcsv.read_csv(sys.argv[2])
x = np.column_stack([table.column(n).to_numpy() for n in booster.feature_names]).astype(np.float32)
del table
started = time.perf_counter()
out = booster.inplace_predict(x, validate_features=False)
seconds = time.perf_counter() - started
print(json.dumps({"rows": len(out), "seconds": seconds}))
"""


@dataclass
class Run:
    """One measured process."""

    label: str
    rows: int
    seconds: float
    peak_rss: int  # bytes

    @property
    def rows_s(self) -> float:
        return self.rows / self.seconds


def measure(label: str, cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of one process; fails loudly on a non-zero exit."""
    started = time.perf_counter()
    with log.open("ab") as err:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label} failed (exit {status}); see {log}")
    return seconds, usage.ru_maxrss * 1024, out


def replicate(rows: int, path: Path) -> Path:
    """The 30,000 rows repeated to `rows` (ID = row number), written a copy at a time: memory
    stays at one copy. Reused when a file with that many rows is already there.

    Amounts keep their ".0" (as pandas writes them): `mlflow models predict` refuses an integer
    column where the signature says double.
    """
    import pandas as pd

    marker = path.with_suffix(".rows")
    if path.is_file() and marker.is_file() and marker.read_text() == str(rows):
        return path
    base = pd.read_csv(DATA).drop(columns=["target", "ID"])
    lines = base.to_csv(index=False, header=False).splitlines()
    partial = path.with_suffix(".partial")
    written = 0
    with partial.open("w") as out:
        out.write(",".join(["ID", *base.columns]) + "\n")
        while written < rows:
            count = min(len(lines), rows - written)
            out.write("".join(f"{written + i},{lines[i]}\n" for i in range(count)))
            written += count
    partial.replace(path)
    marker.write_text(str(rows))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows of the timed file.")
    parser.add_argument(
        "--big-rows", type=int, default=10_000_000, help="Rows of the memory file (0: skip)."
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mlops-bench-batch",
        help="Cache for the generated inputs (kept between runs; never in git).",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    log = run_dir / "bench.log"
    print(f"training the XGBoost champion into {run_dir} (log: {log}) ...", flush=True)
    uri, version = train(run_dir / "store", log)
    print(f"replicating the data to {args.rows:,} rows in {args.workdir} ...", flush=True)
    small = replicate(args.rows, args.workdir / f"in-{args.rows}.csv")
    env = {"MLFLOW_TRACKING_URI": uri}
    runs: list[Run] = []

    def mlops_predict(source: Path, rows: int, out: Path) -> tuple[Run, Run]:
        """(the whole process, its streaming phase: reading, checking, scoring, writing)."""
        seconds, rss, printed = measure(
            f"mlops predict ({rows:,} rows)",
            [str(BIN / "mlops"), "predict", "--model", f"credit-risk/{version}",
             "--input", str(source), "--output", str(out)],
            env, log,
        )  # fmt: skip
        summary = json.loads(printed.strip().splitlines()[-1])
        assert summary["rows"] == rows, summary
        assert summary["rejected"] == 0, summary
        print(
            f"  mlops predict, {rows:,} rows: {seconds:.1f} s wall, {summary['seconds']:.1f} s "
            f"after start-up, {summary['scoring_seconds']:.1f} s streaming the rows",
            flush=True,
        )
        return (
            Run("mlops predict (whole process)", rows, seconds, rss),
            Run("mlops predict (streaming: read, check, score, write)", rows,
                summary["scoring_seconds"], rss),
        )  # fmt: skip

    ours, streamed = mlops_predict(small, args.rows, run_dir / "ours.parquet")
    runs += [ours, streamed]

    path = f"{BIN}:{os.environ.get('PATH', '')}"  # mlflow models predict execs python
    seconds, rss, _ = measure(
        "mlflow models predict",
        [str(BIN / "mlflow"), "models", "predict", "-m", f"models:/credit-risk/{version}",
         "-i", str(small), "-t", "csv", "-o", str(run_dir / "mlflow.json"),
         "--env-manager", "local"],
        {**env, "PATH": path}, log,
    )  # fmt: skip
    runs.append(Run("mlflow models predict", args.rows, seconds, rss))
    print(f"  mlflow models predict: {seconds:.1f} s wall")

    from ml.registry import Registry

    model_dir = Registry(uri).download_version("credit-risk", int(version), run_dir / "model")
    _, rss, out = measure(
        "limit", [PY, "-c", LIMIT_SCRIPT, str(model_dir / "model.ubj"), str(small)], {}, log
    )
    timed = json.loads(out)
    runs.append(Run("limit (inplace_predict, in memory)", timed["rows"], timed["seconds"], rss))
    print(f"  limit: {timed['seconds']:.1f} s of prediction")

    big: Run | None = None
    if args.big_rows:
        print(f"replicating the data to {args.big_rows:,} rows ...", flush=True)
        large = replicate(args.big_rows, args.workdir / f"in-{args.big_rows}.csv")
        big, big_streamed = mlops_predict(large, args.big_rows, run_dir / "big.parquet")
        runs += [big, big_streamed]

    load = os.getloadavg()[0]
    print(f"\nload average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    print("\n| run | rows | seconds | rows/s | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.label} | {r.rows:,} | {r.seconds:.1f} | {r.rows_s:,.0f} | "
            f"{r.peak_rss / 2**20:,.0f} MiB |"
        )
    theirs, limit = runs[2], runs[3]
    print(
        f"\nmlops predict / mlflow models predict, whole processes: "
        f"{ours.rows_s / theirs.rows_s:.1f}x (goal >= 20x)"
        f"\nmlops predict streaming (I/O included) / limit: "
        f"{streamed.rows_s / limit.rows_s:.2f} (goal >= 0.5); whole process / limit: "
        f"{ours.rows_s / limit.rows_s:.2f}"
        f"\nceiling of the first ratio (limit / mlflow models predict): "
        f"{limit.rows_s / theirs.rows_s:.1f}x"
    )
    if big is not None:
        print(
            f"peak RSS of mlops predict on {big.rows:,} rows: {big.peak_rss / 2**20:,.0f} MiB "
            f"(goal <= 1,024 MiB): {'met' if big.peak_rss <= GIB else 'NOT met'}"
        )
    print(f"\nrun directory (outputs, log): {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
