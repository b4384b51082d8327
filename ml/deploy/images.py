"""Images built once per commit, pushed, and addressed by digest (`<repo>@sha256:...`).

`build` makes the local images compose runs (`credit-risk-<target>:<tag>`), reusing an image
whose build inputs did not change; `push` builds the serve and mlflow images for one git SHA,
tags them `<repository>:<git sha>`, pushes them and returns their digests, which is what a
release names and what every environment deploys: production never builds.

The registry's own HTTP API (distribution v2: `HEAD /v2/<name>/manifests/<ref>`) is the source of
truth for "is this tag there, and which digest is it": ECR serves that API with the basic-auth
token of `GetAuthorizationToken`, and so does any registry v2 (the tests push to Debian's
`docker-registry` on loopback). An existing tag is never rebuilt or overwritten (the ECR
repositories are IMMUTABLE), so a rerun of CD keeps the digests of its first run.

docker and boto3 are imported inside the functions that use them: `mlops --help` stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class ImageRef:
    """`<registry>/<repository>` plus a tag or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Split `123.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:...` (or `:tag`).

        Raises:
            ConfigError: no registry host, or neither a tag nor a digest.
        """
        name, at, digest = ref.partition("@")
        registry, slash, rest = name.partition("/")
        tag = None
        if not at:
            rest, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
            tag = tag or None
        if not slash or not rest or (at and not _DIGEST.match(digest)) or (not at and not tag):
            raise ConfigError(
                f"bad image reference {ref!r} (hint: <registry>/<repository>@sha256:<64 hex> or "
                "<registry>/<repository>:<tag>)"
            )
        return cls(registry, rest, tag, digest or None)

    @property
    def name(self) -> str:
        """`<registry>/<repository>`."""
        return f"{self.registry}/{self.repository}"

    def by_digest(self, digest: str) -> str:
        """`<registry>/<repository>@<digest>`: what a release and a task definition name."""
        return f"{self.name}@{digest}"

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository at `tag`."""
        return ImageRef(self.registry, self.repository, tag, None)


def repository_ref(url: str, what: str) -> ImageRef:
    """`ECR_*_REPOSITORY_URL` (no tag) as an ImageRef; `ConfigError` if it is not one."""
    registry, slash, repository = url.partition("/")
    if not slash or not repository or "@" in url or ":" in repository:
        raise ConfigError(
            f"{what}={url!r} is not a repository URL (hint: the terraform output, e.g. "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve)"
        )
    return ImageRef(registry, repository)


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


def default_base(client: Any) -> str | None:
    """BASE_IMAGE if set, else the local Debian base when present (no pulls here), else None:
    the Dockerfile's own default, the digest-pinned official image."""
    from docker.errors import ImageNotFound

    if env := os.environ.get("BASE_IMAGE"):
        return env
    try:
        client.images.get(LOCAL_BASE)
    except ImageNotFound:
        return None
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
        client = docker_client(timeout=10)
    except ImageError:
        return "dockerfile-default"
    return default_base(client) or "dockerfile-default"


def push_tag(target: str, git_sha: str, base: str | None = None) -> str:
    """The tag `target` is pushed as: the git SHA, or `inputs-<hash>` for an INPUT_ADDRESSED
    target (`base`: default `push_base()`)."""
    if target not in INPUT_ADDRESSED:
        return git_sha
    return "inputs-" + inputs_hash(target, base or push_base(), git_sha)[:40]


def build(client: Any, target: str, name: str, git_sha: str, *, force: bool = False) -> Built:
    """Build one Dockerfile target as `name` unless an image with the same inputs exists.

    GIT_SHA is a build argument: the serve image's `SERVE_GIT_COMMIT` (shown by /metadata) and
    every image's `org.opencontainers.image.revision` label carry it.
    """
    from docker.errors import APIError, BuildError, ImageNotFound

    base = default_base(client)
    base_id = "dockerfile-default"
    if base:
        try:
            base_id = client.images.get(base).id
        except ImageNotFound:
            base_id = base  # pulled by the build (GitHub runners)
    wanted = inputs_hash(target, base_id, git_sha)
    if not force:
        try:
            image = client.images.get(name)
        except ImageNotFound:
            pass
        else:
            if (image.labels or {}).get(HASH_LABEL) == wanted:
                return Built(name, False, 0.0, int(image.attrs["Size"]), str(image.id))
    buildargs = {"GIT_SHA": git_sha}
    if base:
        buildargs["BASE_IMAGE"] = base
    start = time.monotonic()
    try:
        stream = client.api.build(
            path=str(ROOT),
            target=target,
            tag=name,
            buildargs=buildargs,
            labels={HASH_LABEL: wanted},
            network_mode="host",
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(f"building {name} (target {target}): {chunk['error'].strip()}")
            if line := chunk.get("stream", "").rstrip():
                print(line, file=sys.stderr)
    except (APIError, BuildError) as exc:
        raise ImageError(f"building {name} (target {target}): {exc}") from exc
    image = client.images.get(name)
    return Built(name, True, time.monotonic() - start, int(image.attrs["Size"]), str(image.id))


def docker_client(timeout: int = 1800) -> Any:
    """A client of the running engine, or `ImageError` saying how to start one."""
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
    return client


def build_all(
    targets: Iterable[str] = TARGETS, tag: str = "latest", *, git_sha: str, force: bool = False
) -> list[Built]:
    """Build (or reuse) every target, serve first: its stages are shared by the others."""
    client = docker_client()
    return [build(client, t, image_name(t, tag), git_sha, force=force) for t in targets]


def sizes(tag: str) -> list[tuple[str, int | None]]:
    """(name, bytes or None when missing) of each local image and the Debian base."""
    from docker.errors import ImageNotFound

    client = docker_client(timeout=60)
    out: list[tuple[str, int | None]] = []
    for name in [image_name(t, tag) for t in TARGETS] + [LOCAL_BASE]:
        try:
            out.append((name, int(client.images.get(name).attrs["Size"])))
        except ImageNotFound:
            out.append((name, None))
    return out


# --- the registry (distribution v2 HTTP API) ----------------------------------------------


def _loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return host in ("localhost", "127.0.0.1", "[::1]") or host.startswith("127.")


def manifest_digest(ref: ImageRef, tag: str, auth: dict[str, str] | None) -> str | None:
    """The digest the registry holds for `tag` (HEAD manifests), or None when it has none.

    Loopback registries speak plain HTTP (as the docker engine allows them to); everything else
    HTTPS.
    """
    scheme = "http" if _loopback(ref.registry) else "https"
    url = f"{scheme}://{ref.registry}/v2/{ref.repository}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES})  # noqa: S310
    if auth:
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            digest = response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ImageError(
            f"registry {ref.registry}: HEAD {ref.repository}:{tag} → {exc.code}"
        ) from exc
    except (OSError, urllib.error.URLError) as exc:
        raise ImageError(f"registry {ref.registry} unreachable: {exc}") from exc
    if not digest or not _DIGEST.match(digest):
        raise ImageError(f"registry {ref.registry} named no digest for {ref.repository}:{tag}")
    return str(digest)


def ecr_auth(registry: str) -> dict[str, str] | None:
    """docker/registry basic auth from ECR's `GetAuthorizationToken` (OIDC credentials), or
    None for a loopback registry (tests, local mirrors), which needs none."""
    if _loopback(registry):
        return None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        data = boto3.client("ecr").get_authorization_token()["authorizationData"][0]
    except (BotoCoreError, ClientError) as exc:
        raise ImageError(f"ECR login for {registry}: {exc}") from exc
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return {"username": user, "password": password}


def _push_stream(client: Any, ref: ImageRef, tag: str, auth: dict[str, str] | None) -> str:
    """Push `ref:tag`; the digest the registry answered with (the stream's `aux.Digest`)."""
    from docker.errors import APIError

    digest = None
    try:
        lines: Iterator[dict[str, Any]] = client.api.push(
            ref.name, tag=tag, auth_config=auth, stream=True, decode=True
        )
        for line in lines:
            if "error" in line:
                raise ImageError(f"push of {ref.name}:{tag} failed: {line['error']}")
            digest = (line.get("aux") or {}).get("Digest") or digest
    except APIError as exc:
        raise ImageError(f"push of {ref.name}:{tag} failed: {exc}") from exc
    if not digest:
        raise ImageError(f"push of {ref.name}:{tag} reported no digest")
    return str(digest)


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
    client = None
    base = push_base() if set(repositories) & set(INPUT_ADDRESSED) else None
    for target, repo in repositories.items():
        auth = ecr_auth(repo.registry)
        tag = push_tag(target, git_sha, base)
        existing = manifest_digest(repo, tag, auth)
        if existing:
            print(f"{repo.name}:{tag} already pushed ({existing}): kept", file=sys.stderr)
            out.append(Pushed(target, repo.by_digest(existing), False))
            continue
        client = client or docker_client()
        local = f"{repo.name}:{tag}"
        build(client, target, local, git_sha, force=force_build)
        pushed = _push_stream(client, repo, tag, auth)
        confirmed = manifest_digest(repo, tag, auth)
        if confirmed != pushed:
            raise ImageError(
                f"{repo.name}:{tag}: the push reported {pushed}, the registry holds {confirmed}"
            )
        print(f"pushed {local} → {pushed}", file=sys.stderr)
        out.append(Pushed(target, repo.by_digest(pushed), True))
    return out


def ensure_in_ecr(ecr: Any, image: str) -> None:
    """Refuse an image reference ECR does not hold, before anything in ECS changes (a task
    definition naming a missing image fails only minutes later, inside ECS)."""
    ref = ImageRef.parse(image)
    ids = [{"imageDigest": ref.digest}] if ref.digest else [{"imageTag": str(ref.tag)}]
    try:
        found = ecr.describe_images(repositoryName=ref.repository, imageIds=ids)
    except ecr.exceptions.ImageNotFoundException as exc:
        raise ImageError(f"image {image} is not in ECR; nothing was changed") from exc
    except ecr.exceptions.RepositoryNotFoundException as exc:
        raise ImageError(
            f"ECR repository {ref.repository!r} does not exist (hint: the platform root "
            "creates it); nothing was changed"
        ) from exc
    if not found.get("imageDetails"):
        raise ImageError(f"image {image} is not in ECR; nothing was changed")


RELEASE_TAG_PREFIX = "release-"


def release_image_tag(release_id: str) -> str:
    """The ECR tag a release adds to its digests; the lifecycle policy (modules/ecr) never
    expires an image carrying a `release-*` tag."""
    return f"{RELEASE_TAG_PREFIX}{release_id}"


def tag_in_ecr(ecr: Any, image: str, tag: str) -> bool:
    """Add `tag` to the image `image` names by digest (a second PutImage of the same
    manifest); True when added now, False when it already carried it.

    Raises:
        ImageError: the digest is not in ECR, or `tag` names another image (tags are
            immutable in these repositories).
    """
    ref = ImageRef.parse(image)
    if not ref.digest:
        raise ImageError(f"{image}: a release tags images by digest only")
    got = ecr.batch_get_image(repositoryName=ref.repository, imageIds=[{"imageDigest": ref.digest}])
    images = got.get("images") or []
    if not images:
        raise ImageError(f"image {image} is not in ECR; cannot tag it {tag}")
    found = images[0]
    try:
        ecr.put_image(
            repositoryName=ref.repository, imageManifest=found["imageManifest"], imageTag=tag,
            imageDigest=ref.digest,
            **({"imageManifestMediaType": found["imageManifestMediaType"]}
               if found.get("imageManifestMediaType") else {}),
        )  # fmt: skip
    except ecr.exceptions.ImageAlreadyExistsException:
        return False
    except ecr.exceptions.ImageTagAlreadyExistsException as exc:
        raise ImageError(
            f"tag {tag} already names another image in {ref.repository} (tags are immutable); "
            "a release id is used once"
        ) from exc
    return True


def untag_in_ecr(ecr: Any, image: str, tag: str) -> bool:
    """Remove `tag` from the repository of `image` (the image stays while another tag, e.g. its
    git SHA, names it); True when removed, False when it was not there. Only `release-*` tags."""
    if not tag.startswith(RELEASE_TAG_PREFIX):
        raise ImageError(f"refusing to remove {tag!r}: only {RELEASE_TAG_PREFIX}* tags")
    ref = ImageRef.parse(image)
    got = ecr.batch_delete_image(repositoryName=ref.repository, imageIds=[{"imageTag": tag}])
    return bool(got.get("imageIds"))


def outputs(pushed: list[Pushed], git_sha: str) -> dict[str, Any]:
    """The JSON `mlops images push` prints (and `mlops release create --images` reads)."""
    return {
        "git_sha": git_sha,
        "images": {p.target: p.image for p in pushed},
        "built": [p.target for p in pushed if p.built],
    }


def write_outputs(data: dict[str, Any], path: Path | None) -> None:
    """Write the JSON to `path` (if given) and `<target>_image=` lines to GITHUB_OUTPUT."""
    from ml import github

    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    github.write_outputs(
        **{f"{k}_image": v for k, v in data["images"].items()},
        # `mlflow_built`: this merge changed the mlflow image's inputs (CD asks for approval).
        **{f"{k}_built": str(k in data["built"]).lower() for k in data["images"]},
    )


# --- compose ---------------------------------------------------------------------------------


def compose_command() -> list[str]:
    """`docker compose` (v2) where installed, else Debian's `docker-compose` (v1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    exe = shutil.which("docker-compose")
    if not exe:
        raise ImageError("neither `docker compose` nor `docker-compose` is installed")
    return [exe]


def render_hostnet(
    out: Path, env: dict[str, str] | None = None, overrides: Iterable[str] = ()
) -> Path:
    """docker-compose.yml + docker-compose.hostnet.yml (+ `overrides`, e.g.
    docker-compose.features.yml) resolved into one file, minus `ports:`.

    docker-compose 1.29 refuses `ports:` with `network_mode: host` ("incompatible with
    port_bindings") and an override cannot delete a key there (v2's `!reset` is v2-only), so the
    merged, interpolated config is written out without them. Ports come from MLFLOW_PORT,
    API_PORT and REDIS_PORT at render time.
    """
    import yaml

    extra = [arg for name in overrides for arg in ("-f", name)]
    done = subprocess.run(
        [*compose_command(), "-f", "docker-compose.yml", "-f", "docker-compose.hostnet.yml",
         *extra, "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ImageError(f"compose config failed: {done.stderr.strip()[-500:]}")
    config = yaml.safe_load(done.stdout)
    for service in config.get("services", {}).values():
        service.pop("ports", None)
    config.pop("name", None)  # v2 adds the project name; -p sets it
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def built_json(items: list[Built]) -> list[dict[str, Any]]:
    """Machine-readable build summary."""
    return [asdict(i) for i in items]
