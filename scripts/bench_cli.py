"""Benchmark the CLI's startup: `mlops --help` and `mlops promote plan` on the embedded store.

Goals: `mlops --help` ≤ 0.5 s, `mlops promote plan` ≤ 2.5 s on a 2-core machine.
Each command runs as a fresh process (what a person or a workflow step pays), `BENCH_RUNS` times
(default 5) after one warm-up run that fills the OS file cache; the median and minimum wall time
are printed, with the median CPU time (user + sys), which a busy machine inflates least. The
embedded store is a temporary ML_HOME with one registered model, two versions and both aliases,
so `plan` reads a real SQLite registry. A benchmark, not a timed test: figures on a loaded
machine are indicative only.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MLOPS = str(Path(sys.executable).with_name("mlops"))
GOALS = {"mlops --help": 0.5, "mlops promote plan": 2.5}


def _store(home: Path) -> None:
    """One model, two versions, both aliases: what `make run` leaves, minus the artifacts."""
    from mlflow import MlflowClient

    from ml.settings import MLSettings

    uri = MLSettings(home=home).resolved_tracking_uri()
    home.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("credit-risk")
    for _ in range(2):
        client.create_model_version("credit-risk", source=(home / "model").as_uri())
    client.set_registered_model_alias("credit-risk", "staging", "2")
    client.set_registered_model_alias("credit-risk", "production", "1")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + sys) seconds per run; CPU is what a loaded machine distorts least."""
    wall, cpu = [], []
    for i in range(RUNS + 1):
        start, start_cpu = time.perf_counter(), _cpu()
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
        elapsed, used = time.perf_counter() - start, _cpu() - start_cpu
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
        if i:  # the first run warms the file cache
            wall.append(elapsed)
            cpu.append(used)
    return wall, cpu


def main() -> None:
    """Print the two figures against their goals."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        base = Path(tmp)
        _store(base / "home")
        (base / "promotions.yaml").write_text("models:\n  credit-risk:\n    version: 2\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ML_"))}
        env["ML_HOME"] = str(base / "home")
        load = os.getloadavg()[0]
        print(f"{RUNS} runs each after a warm-up; load average {load:.2f} on {os.cpu_count()} CPUs")
        for label, args in (
            ("mlops --help", ["--help"]),
            ("mlops promote plan", ["promote", "plan"]),
        ):
            wall, cpu = _time([MLOPS, *args], env, base)
            median = statistics.median(wall)
            verdict = "ok" if median <= GOALS[label] else "OVER"
            print(
                f"{label:20} median {median:.2f} s, min {min(wall):.2f} s, "
                f"CPU {statistics.median(cpu):.2f} s (goal ≤ {GOALS[label]} s wall: {verdict})"
            )


if __name__ == "__main__":
    main()
