"""The MLflow server image changes only when its inputs change: two merges that touch none of
them yield one mlflow digest, so CD's "deploy MLflow only when its digest changed" path holds.

The Dockerfile's mlflow stage (and the stages it is built from) carries no commit, and
`mlops images push` addresses the image by the hash of its inputs (`inputs-<hash>`), so a merge
finds the image a previous merge pushed and reuses its digest without building, even on a fresh
runner whose rebuild would give new layer bytes. Checked against a real registry v2 (Debian's
`docker-registry` on loopback) that holds the image a previous merge pushed; the images are
small manifests written through the registry API, so no docker engine is needed (the build
itself is tests/integration/test_deploy_images.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml.deploy import images
from ml.deploy.image_ref import repository_ref
from tests.fixtures.services import free_port

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MERGE_1 = "1" * 40
MERGE_2 = "2" * 40


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """`docker-registry serve` on 127.0.0.1 with its storage under tmp; fails if missing."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry not installed (make system-deps installs it)")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    with (tmp_path / "registry.log").open("wb") as log:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(
                    f"docker-registry did not start:\n{(tmp_path / 'registry.log').read_text()}"
                )
            time.sleep(0.2)
    yield host
    proc.terminate()
    proc.wait(10)


def _put_blob(host: str, repo: str, body: bytes) -> str:
    """Upload one blob (monolithic upload); its digest."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    start = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(start, timeout=10) as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    upload = urllib.request.Request(
        f"{location}{sep}digest={digest}",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    urllib.request.urlopen(upload, timeout=10).close()
    return digest


def _put_image(host: str, repo: str, tag: str) -> str:
    """A one-layer image as `repo:tag` through the registry API; the registry's digest."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as tar:
        info = tarfile.TarInfo("etc/mlflow-image")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"1\n"))
    layer_body = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer_body)).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    blobs = {"config": _put_blob(host, repo, config), "layer": _put_blob(host, repo, layer_body)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": blobs["config"],
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer_body),
                    "digest": blobs["layer"],
                }
            ],
        }
    ).encode()
    put = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        data=manifest,
        method="PUT",
        headers={"Content-Type": MANIFEST},
    )
    try:
        with urllib.request.urlopen(put, timeout=10) as resp:
            return str(resp.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        pytest.fail(f"the registry refused the manifest: {exc.read()!r}")


def _no_build(*args: object, **kwargs: object) -> None:
    raise AssertionError("nothing should be built: the image of these inputs is pushed already")


def test_two_merges_that_change_no_input_yield_one_mlflow_digest(
    registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the mlflow image a first merge pushed (addressed by its inputs)
    monkeypatch.delenv("BASE_IMAGE", raising=False)
    repo = repository_ref(f"{registry}/credit-risk-mlflow", "ECR_MLFLOW_REPOSITORY_URL")
    tag = images.push_tag("mlflow", MERGE_1)
    assert tag.startswith("inputs-")
    pushed = _put_image(registry, "credit-risk-mlflow", tag)
    # (without an engine, reaching the build fails on the engine instead: a failure too)
    monkeypatch.setattr(images, "build", _no_build)

    # When CD pushes the images of two later merges that change nothing under its inputs
    first = images.push({"mlflow": repo}, MERGE_1)
    second = images.push({"mlflow": repo}, MERGE_2)

    # Then both name the one digest, and neither built anything
    assert first == second
    assert first[0].image == f"{registry}/credit-risk-mlflow@{pushed}"
    assert not first[0].built


def test_an_input_change_gives_another_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_IMAGE", "python:3.11-slim")
    before = images.push_tag("mlflow", MERGE_1)
    assert images.push_tag("mlflow", MERGE_2) == before
    # another base image is another input
    monkeypatch.setenv("BASE_IMAGE", "credit-risk-base:bookworm")
    assert images.push_tag("mlflow", MERGE_1) != before
    # the serve image stays addressed by its commit
    assert images.push_tag("serve", MERGE_2) == MERGE_2


def _stages(dockerfile: str) -> dict[str, tuple[str, str]]:
    """stage name -> (parent, body)."""
    out: dict[str, tuple[str, str]] = {}
    parts = re.split(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", dockerfile, flags=re.M)
    for parent, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        out[name] = (parent, body)
    return out


def test_no_stage_of_the_mlflow_image_carries_the_commit() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    chain = []
    for start in ("mlflow", "build-mlflow"):
        name = start
        while name in stages:
            chain.append(name)
            parent, body = stages[name]
            body_lines = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
            assert "GIT_SHA" not in "\n".join(body_lines), f"stage {name} uses GIT_SHA"
            name = parent
    assert {"mlflow", "build-mlflow", "builder", "base"} <= set(chain)
    # and the serve image still does (/metadata shows the commit)
    assert "SERVE_GIT_COMMIT=${GIT_SHA}" in stages["serve"][1]
