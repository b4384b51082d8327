"""Deploy the serve image to ECS, smoke-test it, roll back on failure (thin entry point).

The logic is in `ml.deploy.ecs`; this file only reads arguments (or the environment the
`deploy` reusable workflow sets) and maps errors to a loud message and a non-zero exit.

    python scripts/deploy.py deploy --cluster C --service S --image REPO_URL:TAG \
        [--base-url URL --expected-model-version N]
    python scripts/deploy.py smoke --base-url URL [--expected-model-version N]
    python scripts/deploy.py rollback --cluster C --service S --task-definition ARN
    python scripts/deploy.py desired-version --model credit-risk [--promotions promotions.yaml]

boto3 honours AWS_ENDPOINT_URL, so the same script runs against moto in tests.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ml.deploy.ecs import (
    DeployError,
    DeployRequest,
    ImageRef,
    smoke_test,
    update_service,
    wait_for_rollout,
)
from ml.deploy.ecs import deploy as run_deploy
from ml.errors import MlopsError


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _github_output(**values: str) -> None:
    """Expose values to later steps/jobs when running in GitHub Actions."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for key, value in values.items():
            out.write(f"{key}={value}\n")


def build_parser() -> argparse.ArgumentParser:
    """Arguments default to the environment variables the workflows set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def service_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cluster", default=_env("ECS_CLUSTER"), help="ECS cluster name")
        p.add_argument("--service", default=_env("ECS_SERVICE"), help="ECS service name")
        p.add_argument("--timeout", type=float, default=600.0, help="rollout wait, seconds")
        p.add_argument("--poll", type=float, default=10.0, help="poll interval, seconds")

    def smoke_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url", default=_env("SMOKE_BASE_URL"), help="service base URL")
        p.add_argument(
            "--expected-model-version",
            default=_env("EXPECTED_MODEL_VERSION"),
            help="model version /metadata must report",
        )
        p.add_argument("--smoke-timeout", type=float, default=120.0, help="seconds")

    dep = sub.add_parser("deploy", help="check image, new revision, roll out, wait, smoke test")
    service_args(dep)
    smoke_args(dep)
    image_default = None
    if _env("ECR_REPOSITORY_URL") and _env("IMAGE_TAG"):
        image_default = f"{os.environ['ECR_REPOSITORY_URL']}:{os.environ['IMAGE_TAG']}"
    dep.add_argument("--image", default=image_default, help="<ecr repository url>:<tag>")
    dep.add_argument("--container", default=_env("ECS_CONTAINER"), help="container to update")

    smoke = sub.add_parser("smoke", help="smoke-test /health and /metadata at a base URL")
    smoke_args(smoke)

    desired = sub.add_parser("desired-version", help="the version promotions.yaml asks for")
    desired.add_argument("--model", default="credit-risk", help="registered model name")
    desired.add_argument("--promotions", type=Path, default=Path("promotions.yaml"))

    back = sub.add_parser("rollback", help="point the service at a task definition and wait")
    service_args(back)
    back.add_argument(
        "--task-definition",
        default=_env("PREVIOUS_TASK_DEFINITION"),
        help="ARN to roll back to",
    )
    return parser


def desired_version(path: Path, model: str) -> int:
    """The version of `model` in promotions.yaml (validated by the promotions engine)."""
    from ml.promotions.spec import load_spec

    entry = load_spec(path).spec.models.get(model)
    if entry is None:
        raise DeployError(f"{path}: model {model!r} is not listed (hint: models.{model}.version)")
    return entry.version


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [n for n in names if not getattr(args, n)]
    if missing:
        flags = ", ".join("--" + n.replace("_", "-") for n in missing)
        raise DeployError(f"missing {flags} (or the matching environment variable)")


def run(argv: list[str] | None = None) -> int:
    """Parse, act, return the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "desired-version":
        version = desired_version(args.promotions, args.model)
        _github_output(version=str(version))
        print(version)
        return 0
    import boto3  # imported late: `smoke` and `desired-version` need no AWS SDK

    if args.command == "smoke":
        _require(args, "base_url")
        meta = smoke_test(args.base_url, args.expected_model_version, timeout=args.smoke_timeout)
        print(f"smoke test passed: model version {meta.get('model', {}).get('version')}")
        return 0
    _require(args, "cluster", "service")
    ecs = boto3.client("ecs")
    if args.command == "rollback":
        _require(args, "task_definition")
        update_service(ecs, args.cluster, args.service, args.task_definition)
        wait_for_rollout(
            ecs,
            args.cluster,
            args.service,
            args.task_definition,
            timeout=args.timeout,
            poll_interval=args.poll,
        )
        print(f"ROLLED BACK {args.service} to {args.task_definition}")
        return 0
    _require(args, "image")
    request = DeployRequest(
        cluster=args.cluster,
        service=args.service,
        image=ImageRef.parse(args.image),
        container=args.container,
        base_url=args.base_url,
        expected_version=args.expected_model_version,
        rollout_timeout=args.timeout,
        poll_interval=args.poll,
        smoke_timeout=args.smoke_timeout,
    )
    result = run_deploy(ecs, boto3.client("ecr"), request)
    _github_output(
        previous_task_definition=result.previous_task_definition,
        task_definition=result.new_task_definition,
    )
    print(f"deployed {request.image.uri} to {args.service}: {result.new_task_definition}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: errors become one loud line on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        return run(argv)
    except MlopsError as exc:
        print(f"::error title=deploy failed::{exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
