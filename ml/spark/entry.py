"""The entry point EMR Serverless runs on a job's driver: `entry.py <mlops verb> [args...]`.

It reads the registry credentials from Secrets Manager (ML_SPARK_REGISTRY_SECRET_ARN, the job
role may read that one secret), runs from the unpacked project archive (config/, data/), turns
the training config to the Spark backend on the job's own session, then hands the arguments to
the `mlops` CLI, whose exit code is the job's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def registry_credentials(secret_arn: str, region: str | None = None) -> tuple[str, str]:
    """(username, password) of the MLflow user in the secret (JSON keys username, password)."""
    from ml.adapters import aws

    client = aws.client("secretsmanager", region)
    value = json.loads(client.get_secret_value(SecretId=secret_arn).get("SecretString") or "{}")
    try:
        return str(value["username"]), str(value["password"])
    except KeyError:
        from ml.errors import ConfigError

        raise ConfigError(
            f"secret {secret_arn} has no username/password (hint: make tf-seed-secrets "
            "ROOT=platform)"
        ) from None


def spark_train_config(source: Path, target: Path) -> Path:
    """`source` (config/train.yaml) with `backend: spark` on the session spark-submit made."""
    import yaml

    from ml.config_file import load_yaml, plain

    # Read as strictly as load_train_config reads the copy: a duplicate key must not vanish here.
    config = plain(load_yaml(source, missing=f"training config not found: {source}")) or {}
    config["backend"] = "spark"
    config["spark"] = {**(config.get("spark") or {}), "master": ""}
    target.write_text(yaml.safe_dump(config))
    return target


def main(argv: list[str]) -> int:
    """Prepare the driver's environment, then run `mlops <argv>`; returns its exit code."""
    project = Path("project")
    if project.is_dir():  # spark.archives unpacked the project files here
        os.chdir(project)
    secret = os.environ.get("ML_SPARK_REGISTRY_SECRET_ARN")
    if secret:
        user, password = registry_credentials(secret, os.environ.get("AWS_REGION"))
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    if argv[:1] == ["train"]:
        from ml.settings import MLSettings

        target = Path(tempfile.mkdtemp(prefix="spark-job-")) / "train.yaml"
        os.environ["ML_TRAIN_CONFIG"] = str(spark_train_config(MLSettings().train_config, target))
    from ml.cli import app

    try:
        app(argv, prog_name="mlops", standalone_mode=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
