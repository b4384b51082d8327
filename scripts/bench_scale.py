"""Benchmark: batch scoring at scale, Parquet in → Parquet out, the local engine vs Spark.

Trains the XGBoost champion into a temporary embedded store (`mlops train --model xgboost`, as
scripts/bench_batch.py), replicates the 30,000 rows to ROWS (default 10,000,000) in a Parquet
file under the work directory (a cache outside git, reused by later runs), then runs, each in its
own process:

- `mlops predict` (the local engine: one process, every core);
- `mlops predict --engine spark --spark-master local[2]` pinned to two CPUs, then `local[1]`
  pinned to one (`taskset`): a Spark task's JVM side (Parquet decoding, Arrow conversion,
  writing) runs beside its Python worker, so an unpinned `local[1]` uses more than one core and
  its "per core" rate would flatter it. Pinned, local[2] / local[1] is the speed-up per core.

Prints, per run: wall time, start-up (wall minus the scoring phase: interpreter, JVM and session,
model download), the scoring phase (reading, checking, scoring, writing) and rows/s per core;
then the goals (local ≤ 5 min at 10 M rows; Spark local[2] ≥ 1.6x local[1]; Spark local[2]
within 2x of the local engine) and a projection for a cluster: per-core rate x cores x the
measured parallel efficiency, plus the job's start-up.

Usage: python scripts/bench_scale.py [--rows 10000000] [--workdir DIR] [--model URI#VERSION]
(`make bench-scale`; SCALE_BENCH_ROWS=1000000 for a quick run)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_batch import measure  # noqa: E402 - one process measured the same way
from bench_serve import train  # noqa: E402 - the same champion, trained the same way

from devtools.proc_stat import stat  # noqa: E402

BIN = ROOT / ".venv" / "bin"
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
ROW_GROUP = 1 << 17  # rows per Parquet row group: the unit Spark splits a file into tasks by


@dataclass
class Run:
    """One measured `mlops predict` process."""

    label: str
    cores: int
    rows: int
    wall: float  # the whole process
    scoring: float  # the summary's scoring_seconds: reading, checking, scoring, writing
    load: tuple[float, float]  # 1-minute load average before and after the run
    cpu: float  # CPU seconds of the process tree (JVM and Python workers included)

    @property
    def startup(self) -> float:
        return self.wall - self.scoring

    @property
    def rate(self) -> float:
        return self.rows / self.scoring

    @property
    def per_core(self) -> float:
        return self.rate / self.cores


class TreeCpu:
    """CPU seconds (user + system) of this process's descendants, sampled from /proc twice a
    second: Spark's JVM and Python workers are not reaped through us, so rusage misses them.
    CPU seconds are what a loaded machine inflates least: the fair figure next to wall time."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            parents: dict[int, int] = {}
            cpu: dict[int, float] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                try:
                    parents[pid], cpu[pid] = stat(pid)
                except OSError:
                    continue
            mine = {os.getpid()}
            grew = True
            while grew:
                more = {pid for pid, parent in parents.items() if parent in mine} - mine
                grew = bool(more)
                mine |= more
            for pid in mine - {os.getpid()}:
                self.seen[pid] = max(self.seen.get(pid, 0.0), cpu[pid])


def replicate(rows: int, path: Path) -> Path:
    """The 30,000 rows repeated to `rows` (ID = row number) in one Parquet file, written a
    row group at a time; reused when a file with that many rows is already there."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = path.with_suffix(".rows")
    if path.is_file() and marker.is_file() and marker.read_text() == str(rows):
        return path
    base = pd.read_csv(DATA).drop(columns=["target", "ID"])
    table = pa.Table.from_pandas(base, preserve_index=False)
    partial = path.with_suffix(".partial")
    written = 0
    with pq.ParquetWriter(partial, table.schema.insert(0, pa.field("ID", pa.int64()))) as out:
        while written < rows:
            count = min(ROW_GROUP, rows - written)
            take = pa.array(np.arange(written, written + count) % len(base))
            group = table.take(take).add_column(
                0, "ID", pa.array(np.arange(written, written + count, dtype=np.int64))
            )
            out.write_table(group, row_group_size=ROW_GROUP)
            written += count
    partial.replace(path)
    marker.write_text(str(rows))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="Rows of the input.")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mlops-bench-scale",
        help="Cache for the generated input (kept between runs; never in git).",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="TRACKING_URI#VERSION of a champion an earlier run trained (skips training).",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    log = run_dir / "bench.log"
    if args.model:
        uri, version = args.model.rsplit("#", 1)
    else:
        print(f"training the XGBoost champion into {run_dir} (log: {log}) ...", flush=True)
        uri, version = train(run_dir / "store", log)
        print(f"  (rerun with --model '{uri}#{version}' to skip training)", flush=True)
    print(f"replicating the data to {args.rows:,} rows of Parquet ...", flush=True)
    source = replicate(args.rows, args.workdir / f"in-{args.rows}.parquet")
    env = {"MLFLOW_TRACKING_URI": uri}
    base = [str(BIN / "mlops"), "predict", "--model", f"credit-risk/{version}"]
    base += ["--input", str(source)]

    available = sorted(os.sched_getaffinity(0))

    def run(label: str, cores: int, extra: list[str], out: str, pin: int | None = None) -> Run:
        cmd = [*base, "--output", out, *extra]
        if pin is not None and pin <= len(available) and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(map(str, available[:pin])), *cmd]
        before = os.getloadavg()[0]
        with TreeCpu() as tree:
            seconds, _, printed = measure(label, cmd, env, log)
        used = tree.seconds
        summary = json.loads(printed.strip().splitlines()[-1])
        assert summary["rows"] == args.rows, summary
        assert summary["rejected"] == 0, summary
        load = (before, os.getloadavg()[0])
        done = Run(label, cores, args.rows, seconds, summary["scoring_seconds"], load, used)
        print(
            f"  {label}: {done.wall:.1f} s wall, {done.startup:.1f} s start-up, "
            f"{done.scoring:.1f} s scoring, {done.per_core:,.0f} rows/s per core, "
            f"{done.cpu:.1f} CPU s (load {load[0]:.2f} -> {load[1]:.2f})",
            flush=True,
        )
        return done

    local = run("local engine", len(available), [], str(run_dir / "local.parquet"))
    spark2 = run(
        "Spark local[2]",
        2,
        ["--engine", "spark", "--spark-master", "local[2]"],
        str(run_dir / "spark2.parquet"),
        pin=2,
    )
    spark1 = run(
        "Spark local[1]",
        1,
        ["--engine", "spark", "--spark-master", "local[1]"],
        str(run_dir / "spark1.parquet"),
        pin=1,
    )

    print(f"\n{len(available)} CPUs; 1-minute load average before -> after each run")
    print(
        "\n| run | load | rows | wall s | start-up s | scoring s | rows/s | rows/s per core "
        "| CPU s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in (local, spark2, spark1):
        print(
            f"| {r.label} | {r.load[0]:.1f} -> {r.load[1]:.1f} | {r.rows:,} | {r.wall:.1f} | "
            f"{r.startup:.1f} | {r.scoring:.1f} | {r.rate:,.0f} | {r.per_core:,.0f} | "
            f"{r.cpu:.1f} |"
        )
    print(
        f"CPU seconds (user + system, the whole process tree) are what the load cannot "
        f"inflate much: Spark local[2] used {spark2.cpu / local.cpu:.2f}x the local engine's."
    )
    speedup = spark2.rate / spark1.rate
    efficiency = speedup / 2
    versus = spark2.wall / local.wall
    print("\ngoals:")
    size = "" if args.rows >= 10**7 else "; a smaller run"
    print(
        f"- local engine <= 5 min at 10 M rows: {local.wall:.0f} s at {args.rows:,} rows "
        f"({'met' if local.wall <= 300 else 'NOT met'}{size})"
    )
    print(
        f"- Spark local[2] >= 1.6x local[1] (scoring phase): {speedup:.2f}x "
        f"({'met' if speedup >= 1.6 else 'NOT met'}); parallel efficiency {efficiency:.2f}"
    )
    print(
        f"- Spark local[2] within 2x of the local engine (wall): {versus:.2f}x "
        f"({'met' if versus <= 2 else 'NOT met'}); scoring phase "
        f"{spark2.scoring / local.scoring:.2f}x"
    )
    print(
        "\nprojection (per-core rate of local[1] x cores x efficiency, + start-up; the start-up "
        "here is a local JVM's, a cluster adds its own):"
    )
    print("| rows | cores | scoring s | + start-up s | total min |")
    print("|---:|---:|---:|---:|---:|")
    for rows in (10**8, 10**9):
        for n in (16, 64, 256):
            scoring = rows / (spark1.per_core * n * efficiency)
            total = scoring + spark2.startup
            print(f"| {rows:,} | {n} | {scoring:,.0f} | {spark2.startup:.0f} | {total / 60:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
