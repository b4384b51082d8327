"""Benchmark the CLI's startup: `mlops --help`, and `mlops promote plan` on the embedded store
and against a local `mlflow server` (an `http://` tracking URI).

Goals: `mlops --help` ≤ 0.5 s, `mlops promote plan` ≤ 2.5 s on a 2-core machine, on both stores.
Each command runs as a fresh process (what a person or a workflow step pays), `BENCH_RUNS` times
(default 5) after one warm-up run that fills the OS file cache; the median and minimum wall time
are printed, with the median CPU time (user + sys), which a busy machine inflates least. Both
stores hold one registered model, two versions and both aliases: the embedded one is a temporary
ML_HOME (`plan` reads a real SQLite registry), the server one a `mlflow server` on 127.0.0.1 over
its own SQLite file (`plan` reads it over REST). A benchmark, not a timed test: figures on a
loaded machine are indicative only.
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


def _store(uri: str, home: Path) -> None:
    """One model, two versions, both aliases on v2: `make run`'s registry, minus artifacts."""
    from mlflow import MlflowClient

    home.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("credit-risk")
    # a server accepts a run's artifact as a source, not a local path
    run = client.create_run("0").info.run_id
    for _ in range(2):
        client.create_model_version("credit-risk", source=f"runs:/{run}/model", run_id=run)
    # both aliases on git's version: the plan reads and diffs, and no alias move needs gates
    client.set_registered_model_alias("credit-risk", "staging", "2")
    client.set_registered_model_alias("credit-risk", "production", "2")


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
    """Print the figures against their goals."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
    from devtools.services import start_mlflow_server, stop_mlflow_server
    from ml.settings import MLSettings

    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # as in the mlflow image
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        base = Path(tmp)
        home = base / "home"
        _store(MLSettings(home=home).resolved_tracking_uri(), home)
        served = base / "server"
        served.mkdir()
        server = start_mlflow_server(f"sqlite:///{served / 'mlflow.db'}", served, timeout_s=600)
        try:
            _store(server.uri, served)
            (base / "promotions.yaml").write_text("models:\n  credit-risk:\n    version: 2\n")
            (base / "config").mkdir()
            (base / "config" / "gates.yaml").write_text("defaults:\n  floors: {roc_auc: 0.7}\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ML_"))}
            env["ML_HOME"] = str(home)
            remote = {**env, "MLFLOW_TRACKING_URI": server.uri}
            load = os.getloadavg()[0]
            cpus = os.cpu_count()
            print(f"{RUNS} runs each after a warm-up; load average {load:.2f} on {cpus} CPUs")
            for label, args, goal, environ in (
                ("mlops --help", ["--help"], GOALS["mlops --help"], env),
                ("mlops promote plan", ["promote", "plan"], GOALS["mlops promote plan"], env),
                ("  ... against http://", ["promote", "plan"], GOALS["mlops promote plan"], remote),
            ):
                wall, cpu = _time([MLOPS, *args], environ, base)
                median = statistics.median(wall)
                verdict = "ok" if median <= goal else "OVER"
                print(
                    f"{label:24} median {median:.2f} s, min {min(wall):.2f} s, "
                    f"CPU {statistics.median(cpu):.2f} s (goal ≤ {goal} s wall: {verdict})"
                )
        finally:
            stop_mlflow_server(server)


if __name__ == "__main__":
    main()
