"""Build the project's images through the docker SDK, skip those already up to date, time them.

    python scripts/docker_images.py build [--target serve ...] [--tag latest] [--force]
    python scripts/docker_images.py sizes
    python scripts/docker_images.py hostnet-compose [-o .cache/docker/compose.hostnet.yml]

Each image is labelled with a hash of its build inputs (Dockerfile, lock, sources, config, data
snapshot, target, base image id); an image whose label matches is reused, so test sessions and
`make images` only rebuild after a change. The base is `credit-risk-base:bookworm` (built by
scripts/docker_engine.sh where nothing can be pulled) when it exists, else python:3.11-slim;
BASE_IMAGE overrides both. Builds use the host network (the engine runs without a bridge).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import ImageNotFound

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("serve", "mlflow", "train")
LOCAL_BASE = "credit-risk-base:bookworm"
DEFAULT_BASE = "python:3.11-slim"
HASH_LABEL = "org.credit-risk.inputs-sha256"
# What the Dockerfile copies, per target; anything else cannot change an image.
COMMON_INPUTS = ("Dockerfile", "pyproject.toml", "uv.lock", "README.md")
TARGET_INPUTS = {
    "serve": ("ml", "serve"),
    "mlflow": (),
    "train": ("ml", "serve", "config", "data/uci_credit_card.csv.gz", "promotions.yaml"),
    # Not in TARGETS (`make images`): built on demand by `make airflow-image`.
    "airflow": (
        "ml",
        "serve",
        "config",
        "data/uci_credit_card.csv.gz",
        "promotions.yaml",
        "airflow/requirements.txt",
        "dags",
    ),
}


@dataclass(frozen=True)
class Built:
    """One image: its tag, whether it was (re)built, build seconds and size in bytes."""

    tag: str
    built: bool
    seconds: float
    size: int


def image_name(target: str, tag: str) -> str:
    """The name docker-compose.yml expects: `$IMAGE_PREFIX-<target>:<tag>`."""
    prefix = os.environ.get("IMAGE_PREFIX", "credit-risk")
    return f"{prefix}-{target}:{tag}"


def base_image(client: docker.DockerClient) -> str:
    """BASE_IMAGE if set, else the local Debian base when present, else the official slim image."""
    if env := os.environ.get("BASE_IMAGE"):
        return env
    try:
        client.images.get(LOCAL_BASE)
    except ImageNotFound:
        return DEFAULT_BASE
    return LOCAL_BASE


def _files(paths: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for rel in paths:
        path = ROOT / rel
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
    return out


def inputs_hash(target: str, base_id: str) -> str:
    """sha256 over the target's build inputs and the base image id."""
    digest = hashlib.sha256(f"{target}\0{base_id}\0".encode())
    for path in _files(COMMON_INPUTS + TARGET_INPUTS[target]):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(
    client: docker.DockerClient, target: str, tag: str = "latest", *, force: bool = False
) -> Built:
    """Build one target unless an image with the same inputs hash exists; stream the log."""
    name = image_name(target, tag)
    base = base_image(client)
    try:
        base_id = client.images.get(base).id
    except ImageNotFound:
        base_id = base  # pulled by the build (GitHub runners)
    wanted = inputs_hash(target, base_id)
    if not force:
        try:
            image = client.images.get(name)
        except ImageNotFound:
            pass
        else:
            if (image.labels or {}).get(HASH_LABEL) == wanted:
                return Built(name, False, 0.0, image.attrs["Size"])
    start = time.monotonic()
    stream = client.api.build(
        path=str(ROOT),
        target=target,
        tag=name,
        buildargs={"BASE_IMAGE": base, "GIT_SHA": os.environ.get("GIT_SHA", "unknown")},
        labels={HASH_LABEL: wanted},
        network_mode="host",
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            raise RuntimeError(f"building {name}: {chunk['error'].strip()}")
        if line := chunk.get("stream", "").rstrip():
            print(line, file=sys.stderr)
    seconds = time.monotonic() - start
    return Built(name, True, seconds, client.images.get(name).attrs["Size"])


def build_all(
    targets: Iterable[str] = TARGETS, tag: str = "latest", *, force: bool = False
) -> list[Built]:
    """Build (or reuse) every target, serve first: its stages are shared by the others."""
    client = docker.from_env(timeout=1800)
    return [build(client, t, tag, force=force) for t in targets]


def compose_command() -> list[str]:
    """`docker compose` (v2) where installed, else Debian's `docker-compose` (v1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    exe = shutil.which("docker-compose")
    if not exe:
        raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")
    return [exe]


def render_hostnet(out: Path, env: dict[str, str] | None = None) -> Path:
    """docker-compose.yml + docker-compose.hostnet.yml resolved into one file, minus `ports:`.

    docker-compose 1.29 refuses `ports:` with `network_mode: host` ("incompatible with
    port_bindings") and an override cannot delete a key there (v2's `!reset` is v2-only), so the
    merged, interpolated config is written out without them. Ports come from MLFLOW_PORT and
    API_PORT at render time.
    """
    import yaml

    done = subprocess.run(
        [*compose_command(), "-f", "docker-compose.yml", "-f", "docker-compose.hostnet.yml",
         "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    config = yaml.safe_load(done.stdout)
    for service in config.get("services", {}).values():
        service.pop("ports", None)
    config.pop("name", None)  # v2 adds the project name; -p sets it
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    """Command line: `build` or `sizes`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="Build the images that are out of date.")
    b.add_argument(
        "--target", action="append", choices=list(TARGET_INPUTS), help="Repeatable; default: all."
    )
    b.add_argument("--tag", default=os.environ.get("IMAGE_TAG", "latest"))
    b.add_argument("--force", action="store_true", help="Rebuild even when up to date.")
    s = sub.add_parser("sizes", help="Print the size of each image.")
    s.add_argument("--tag", default=os.environ.get("IMAGE_TAG", "latest"))
    h = sub.add_parser("hostnet-compose", help="Write the host-network compose file (no ports).")
    h.add_argument("-o", "--output", type=Path, default=ROOT / ".cache/docker/compose.hostnet.yml")
    args = parser.parse_args(argv)

    if args.cmd == "hostnet-compose":
        print(render_hostnet(args.output))
        return 0

    if args.cmd == "build":
        for item in build_all(args.target or TARGETS, args.tag, force=args.force):
            state = f"built in {item.seconds:.0f} s" if item.built else "up to date"
            print(f"{item.tag:32} {_mb(item.size):>8}  {state}")
        return 0
    client = docker.from_env()
    names = [image_name(t, args.tag) for t in TARGETS] + [LOCAL_BASE]
    for name in names:
        try:
            print(f"{name:32} {_mb(client.images.get(name).attrs['Size']):>8}")
        except ImageNotFound:
            print(f"{name:32} {'missing':>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
