"""Benchmark of the DVC pipeline: no-op `dvc repro`, the whole pipeline, push + pull.

Builds a throw-away repository from this checkout's pipeline files (dvc.yaml, params.yaml,
config/train.yaml, the 30,000 rows), a moto S3 server as the remote and a SQLite MLflow store,
then times, with the `dvc` of .venv-dvc:
- the whole pipeline (`dvc repro`: ingest, validate, train both candidates, evaluate);
- a no-op `dvc repro` (nothing changed; median of 3);
- `dvc push` of the pipeline's data, then `dvc pull` after the cache and the outputs are wiped.
Goals: no-op <= 5 s, whole pipeline <= 120 s, push + pull <= 10 s (docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.adapters import dvc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # devtools/ is not in the wheel: import it from the checkout
from devtools.services import start_moto_server, stop_moto_server  # noqa: E402

FILES = (
    "dvc.yaml",
    "params.yaml",
    "config/train.yaml",
    "data/uci_credit_card.csv.gz",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
)
BUCKET = "bench-dvc"


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dvc-") as tmp_name:
        tmp = Path(tmp_name)
        moto = start_moto_server(tmp / "moto.log")
        try:
            env = {
                **dvc.environment(),
                "AWS_ENDPOINT_URL": moto.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "eu-west-1",
                "ML_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
                "ML_HOME": str(tmp / "mlops"),
            }
            env.pop("GITHUB_SHA", None)
            import boto3

            boto3.client(
                "s3",
                endpoint_url=moto.url,
                region_name="eu-west-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106  (moto's dummy)
            ).create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
            )
            repo = tmp / "repo"
            for rel in FILES:
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / rel, repo / rel)
            git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
            subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
            subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
            subprocess.run([*git, "commit", "-qm", "bench"], cwd=repo, check=True)
            (repo / ".dvc" / "config.local").write_text(
                f"['remote \"platform\"']\n    url = s3://{BUCKET}/dvc\n"
                f"    endpointurl = {moto.url}\n"
            )
            binary = dvc.binary(ROOT)
            whole = _timed([binary, "repro"], repo, env)
            noop = statistics.median(_timed([binary, "repro"], repo, env) for _ in range(3))
            push = _timed([binary, "push"], repo, env)
            shutil.rmtree(repo / ".dvc" / "cache")
            (repo / "build" / "pipeline" / "train.csv").unlink()
            pull = _timed([binary, "pull"], repo, env)
        finally:
            stop_moto_server(moto)
    print(f"machine              {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"whole pipeline       {whole:.1f} s (goal <= 120 s; 30,000 rows, both candidates)")
    print(f"no-op dvc repro      {noop:.2f} s (goal <= 5 s; median of 3)")
    print(f"push + pull          {push + pull:.2f} s (goal <= 10 s)")
    print(f"  push, pull         {push:.2f} s, {pull:.2f} s")


if __name__ == "__main__":
    main()
