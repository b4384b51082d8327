"""The docker engine (through the docker SDK) and `docker compose` (the CLI): the only module
that imports `docker` or runs `docker`.

The SDK is imported inside the functions that use it: `mlops --help` stays fast.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.errors import ImageError


@dataclass(frozen=True)
class LocalImage:
    """An image the engine holds: its id, labels and size in bytes."""

    id: str
    labels: Mapping[str, str]
    size: int


class Engine:
    """A client of the running engine."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, timeout: int = 1800) -> Engine:
        """The running engine, or `ImageError` saying how to start one."""
        import docker
        from docker.errors import DockerException

        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except DockerException as exc:
            raise ImageError(
                f"no docker engine answers ({exc}); hint: `make docker-engine` here, or the "
                "runner's own engine on GitHub"
            ) from exc
        return cls(client)

    def image(self, name: str) -> LocalImage | None:
        """The local image `name` (or id), or None when the engine has none."""
        from docker.errors import ImageNotFound

        try:
            image = self.client.images.get(name)
        except ImageNotFound:
            return None
        return LocalImage(str(image.id), dict(image.labels or {}), int(image.attrs["Size"]))

    def build(
        self,
        context: Path,
        target: str,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
    ) -> None:
        """Build one Dockerfile target as `tag` (host network), its log on stderr.

        Raises:
            ImageError: the build failed, naming the image, the target and the engine's error.
        """
        from docker.errors import APIError, BuildError

        try:
            stream = self.client.api.build(
                path=str(context),
                target=target,
                tag=tag,
                buildargs=dict(buildargs),
                labels=dict(labels),
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise ImageError(f"building {tag} (target {target}): {chunk['error'].strip()}")
                if line := chunk.get("stream", "").rstrip():
                    print(line, file=sys.stderr)
        except (APIError, BuildError) as exc:
            raise ImageError(f"building {tag} (target {target}): {exc}") from exc

    def push(self, name: str, tag: str, auth: dict[str, str] | None) -> str:
        """Push `name:tag`; the digest the registry answered with (the stream's `aux.Digest`)."""
        from docker.errors import APIError

        digest = None
        try:
            lines: Iterator[dict[str, Any]] = self.client.api.push(
                name, tag=tag, auth_config=auth, stream=True, decode=True
            )
            for line in lines:
                if "error" in line:
                    raise ImageError(f"push of {name}:{tag} failed: {line['error']}")
                digest = (line.get("aux") or {}).get("Digest") or digest
        except APIError as exc:
            raise ImageError(f"push of {name}:{tag} failed: {exc}") from exc
        if not digest:
            raise ImageError(f"push of {name}:{tag} reported no digest")
        return str(digest)


def compose_command() -> list[str]:
    """`docker compose` (v2) where installed, else Debian's `docker-compose` (v1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    exe = shutil.which("docker-compose")
    if not exe:
        raise ImageError("neither `docker compose` nor `docker-compose` is installed")
    return [exe]


def compose_config(files: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """`docker compose -f F... config`: the merged, interpolated configuration (YAML)."""
    args = [arg for f in files for arg in ("-f", f)]
    done = subprocess.run(
        [*compose_command(), *args, "config"],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ImageError(f"compose config failed: {done.stderr.strip()[-500:]}")
    return done.stdout
