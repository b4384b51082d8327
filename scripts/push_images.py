"""Build the images with the docker SDK and push them to ECR as `<repository>:<git sha>`.

Tags are immutable (the ECR repositories refuse overwrites): a tag already in ECR is kept and
not rebuilt, so a re-run of CD is a no-op here. The registry login uses boto3's
`get_authorization_token` (the credentials come from OIDC), so the workflow needs no docker
login action and no `aws` CLI.

Environment: ECR_REPOSITORY_URL (serve image), optional MLFLOW_ECR_REPOSITORY_URL (mlflow
image), IMAGE_TAG (default GITHUB_SHA), optional BASE_IMAGE (build argument).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from dataclasses import dataclass
from typing import Any

from ml.deploy.ecs import DeployError, ImageMissingError, ImageRef, ensure_image


@dataclass(frozen=True)
class Target:
    """One image: its Dockerfile target and where it goes."""

    dockerfile_target: str
    image: ImageRef


def targets_from_env(env: dict[str, str], tag: str) -> list[Target]:
    """The images to push, from the terraform outputs in the environment."""
    found = []
    for target, var in (("serve", "ECR_REPOSITORY_URL"), ("mlflow", "MLFLOW_ECR_REPOSITORY_URL")):
        if env.get(var):
            found.append(Target(target, ImageRef.parse(f"{env[var]}:{tag}")))
    if not found:
        raise DeployError("ECR_REPOSITORY_URL is not set (terraform output ecr_repository_url)")
    return found


def registry_auth(ecr: Any) -> dict[str, str]:
    """docker SDK auth_config from ECR's authorization token."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return {"username": user, "password": password}


def push(client: Any, target: Target, auth: dict[str, str], base_image: str | None) -> None:
    """Build `target` from ./Dockerfile, tag it and push; raise on any error in the stream."""
    buildargs = {"BASE_IMAGE": base_image} if base_image else {}
    image, _ = client.images.build(
        path=".",
        target=target.dockerfile_target,
        tag=target.image.uri,
        buildargs=buildargs,
        rm=True,
        pull=False,
        network_mode="host",
    )
    print(f"built {target.image.uri} ({image.id})")
    for line in client.images.push(
        f"{target.image.registry}/{target.image.repository}",
        tag=target.image.tag,
        auth_config=auth,
        stream=True,
        decode=True,
    ):
        if "error" in line:
            raise DeployError(f"push of {target.image.uri} failed: {line['error']}")
    print(f"pushed {target.image.uri}")


def main(argv: list[str] | None = None) -> int:
    """Build and push every configured image whose tag is not in ECR yet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tag", default=os.environ.get("IMAGE_TAG") or os.environ.get("GITHUB_SHA")
    )
    args = parser.parse_args(argv)
    try:
        if not args.tag:
            raise DeployError("no image tag: set IMAGE_TAG (the git SHA) or --tag")
        import boto3
        import docker

        ecr = boto3.client("ecr")
        targets = targets_from_env(dict(os.environ), args.tag)
        todo = []
        for target in targets:
            try:
                ensure_image(ecr, target.image)
                print(f"{target.image.uri} already in ECR (immutable tag): not rebuilt")
            except ImageMissingError:
                todo.append(target)
        if todo:
            client = docker.from_env()
            auth = registry_auth(ecr)
            for target in todo:
                push(client, target, auth, os.environ.get("BASE_IMAGE") or None)
    except DeployError as exc:
        print(f"::error title=push images::{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
