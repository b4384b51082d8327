"""Images built once per commit, pushed, and addressed by digest (`<repo>@sha256:...`).

`build` makes the local images compose runs (`credit-risk-<target>:<tag>`), reusing an image
whose build inputs did not change; `push` builds the serve and mlflow images for one git SHA,
tags them `<repository>:<git sha>`, pushes them and returns their digests, which is what a
release names and what every environment deploys: production never builds.

The registry's own HTTP API (ml/adapters/registry_v2.py) says whether a tag is there and which
digest it is; an existing tag is never rebuilt or overwritten (the ECR repositories are
IMMUTABLE), so a rerun of CD keeps the digests of its first run. The engine is
ml/adapters/docker.py; ECR's login and tags are ml/deploy/ecr.py; references are
ml/deploy/image_ref.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ml.adapters.docker import Engine
from ml.adapters.registry_v2 import manifest_digest
from ml.deploy.ecr import ecr_auth
from ml.deploy.image_ref import ImageRef
from ml.errors import ConfigError, ImageError

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("serve", "mlflow", "train")
PUSHED = ("serve", "mlflow")  # train runs where the code is (CI, Airflow), never on ECS
LOCAL_BASE = "credit-risk-base:bookworm"
HASH_LABEL = "org.credit-risk.inputs-sha256"
# Images that do not carry the commit (no GIT_SHA in their Dockerfile stages): they are tagged
# `inputs-<hash of their inputs>` instead of the git SHA, so a merge that changes none of their
# inputs finds the pushed image and reuses its digest, even on a fresh runner without a build
# cache (a rebuild would give new layer bytes, hence a new digest, and a redeploy of MLflow).
INPUT_ADDRESSED = ("mlflow",)
# What the Dockerfile copies, per target; anything else cannot change an image.
COMMON_INPUTS = ("Dockerfile", "pyproject.toml", "uv.lock", "README.md")
TARGET_INPUTS = {
    "serve": ("ml", "serve"),
    "mlflow": (),
    # Not in TARGETS either: Debian's redis-server for the compose profile `features`, built by
    # the compose tests (tests/fixtures/docker_stack.py); AWS runs ElastiCache.
    "redis": (),
    "train": ("ml", "serve", "config", "data/uci_credit_card.csv.gz", "promotions.yaml"),
    # Not in TARGETS (`make images`): the train image + Airflow, built by `make airflow-image`.
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
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


# --- local builds --------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """One local image: its name, whether it was (re)built, build seconds, size in bytes, id."""

    name: str
    built: bool
    seconds: float
    size: int
    image_id: str


def image_name(target: str, tag: str) -> str:
    """The name docker-compose.yml expects: `$IMAGE_PREFIX-<target>:<tag>`."""
    return f"{os.environ.get('IMAGE_PREFIX', 'credit-risk')}-{target}:{tag}"


def default_base(engine: Engine) -> str | None:
    """BASE_IMAGE if set, else the local Debian base when present (no pulls here), else None:
    the Dockerfile's own default, the digest-pinned official image."""
    if env := os.environ.get("BASE_IMAGE"):
        return env
    return LOCAL_BASE if engine.image(LOCAL_BASE) else None


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


def inputs_hash(target: str, base_id: str, git_sha: str) -> str:
    """sha256 over the target's build inputs, the base image id and the baked-in git SHA (none
    for an INPUT_ADDRESSED target)."""
    baked = "" if target in INPUT_ADDRESSED else git_sha
    digest = hashlib.sha256(f"{target}\0{base_id}\0{baked}\0".encode())
    for path in _files(COMMON_INPUTS + TARGET_INPUTS[target]):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def push_base() -> str:
    """The base an INPUT_ADDRESSED image is built on, as its tag names it: BASE_IMAGE, else the
    local Debian base where an engine holds it, else the Dockerfile's pinned default (CD)."""
    if env := os.environ.get("BASE_IMAGE"):
        return env
    try:
        engine = Engine.connect(timeout=10)
    except ImageError:
        return "dockerfile-default"
    return default_base(engine) or "dockerfile-default"


def push_tag(target: str, git_sha: str, base: str | None = None) -> str:
    """The tag `target` is pushed as: the git SHA, or `inputs-<hash>` for an INPUT_ADDRESSED
    target (`base`: default `push_base()`)."""
    if target not in INPUT_ADDRESSED:
        return git_sha
    return "inputs-" + inputs_hash(target, base or push_base(), git_sha)[:40]


def build(engine: Engine, target: str, name: str, git_sha: str, *, force: bool = False) -> Built:
    """Build one Dockerfile target as `name` unless an image with the same inputs exists.

    GIT_SHA is a build argument: the serve image's `SERVE_GIT_COMMIT` (shown by /metadata) and
    every image's `org.opencontainers.image.revision` label carry it.
    """
    base = default_base(engine)
    base_id = "dockerfile-default"
    if base:
        found = engine.image(base)
        base_id = found.id if found else base  # else pulled by the build (GitHub runners)
    wanted = inputs_hash(target, base_id, git_sha)
    if not force:
        image = engine.image(name)
        if image is not None and image.labels.get(HASH_LABEL) == wanted:
            return Built(name, False, 0.0, image.size, image.id)
    buildargs = {"GIT_SHA": git_sha}
    if base:
        buildargs["BASE_IMAGE"] = base
    start = time.monotonic()
    engine.build(ROOT, target, name, buildargs, {HASH_LABEL: wanted})
    image = engine.image(name)
    if image is None:
        raise ImageError(f"building {name} (target {target}): the engine holds no such image")
    return Built(name, True, time.monotonic() - start, image.size, image.id)


def build_all(
    targets: Iterable[str] = TARGETS, tag: str = "latest", *, git_sha: str, force: bool = False
) -> list[Built]:
    """Build (or reuse) every target, serve first: its stages are shared by the others."""
    engine = Engine.connect()
    return [build(engine, t, image_name(t, tag), git_sha, force=force) for t in targets]


def sizes(tag: str) -> list[tuple[str, int | None]]:
    """(name, bytes or None when missing) of each local image and the Debian base."""
    engine = Engine.connect(timeout=60)
    out: list[tuple[str, int | None]] = []
    for name in [image_name(t, tag) for t in TARGETS] + [LOCAL_BASE]:
        found = engine.image(name)
        out.append((name, found.size if found else None))
    return out


# --- pushes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """One pushed image: target, `<repo>@sha256:...`, and whether this run built it."""

    target: str
    image: str
    built: bool


def push(
    repositories: dict[str, ImageRef], git_sha: str, *, force_build: bool = False
) -> list[Pushed]:
    """Build once and push each target as `<repository>:<git sha>`; return digest references.

    A tag the registry already holds is kept (immutable tags): its digest is returned and
    nothing is built, so a rerun of CD for the same commit yields the same release.
    """
    if not _SHA.match(git_sha):
        raise ConfigError(f"git SHA {git_sha!r} is not a hex commit id (hint: --git-sha)")
    out: list[Pushed] = []
    engine = None
    base = push_base() if set(repositories) & set(INPUT_ADDRESSED) else None
    for target, repo in repositories.items():
        auth = ecr_auth(repo.registry)
        tag = push_tag(target, git_sha, base)
        existing = manifest_digest(repo.registry, repo.repository, tag, auth)
        if existing:
            print(f"{repo.name}:{tag} already pushed ({existing}): kept", file=sys.stderr)
            out.append(Pushed(target, repo.by_digest(existing), False))
            continue
        engine = engine or Engine.connect()
        local = f"{repo.name}:{tag}"
        build(engine, target, local, git_sha, force=force_build)
        pushed = engine.push(repo.name, tag, auth)
        confirmed = manifest_digest(repo.registry, repo.repository, tag, auth)
        if confirmed != pushed:
            raise ImageError(
                f"{repo.name}:{tag}: the push reported {pushed}, the registry holds {confirmed}"
            )
        print(f"pushed {local} → {pushed}", file=sys.stderr)
        out.append(Pushed(target, repo.by_digest(pushed), True))
    return out


def outputs(pushed: list[Pushed], git_sha: str) -> dict[str, Any]:
    """The JSON `mlops images push` prints (and `mlops release create --images` reads)."""
    return {
        "git_sha": git_sha,
        "images": {p.target: p.image for p in pushed},
        "built": [p.target for p in pushed if p.built],
    }


def write_outputs(data: dict[str, Any], path: Path | None) -> None:
    """Write the JSON to `path` (if given) and `<target>_image=` lines to GITHUB_OUTPUT."""
    from ml.adapters import actions

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    actions.write_outputs(
        **{f"{k}_image": v for k, v in data["images"].items()},
        # `mlflow_built`: this merge changed the mlflow image's inputs (CD asks for approval).
        **{f"{k}_built": str(k in data["built"]).lower() for k in data["images"]},
    )


def built_json(items: list[Built]) -> list[dict[str, Any]]:
    """Machine-readable build summary."""
    return [asdict(i) for i in items]
