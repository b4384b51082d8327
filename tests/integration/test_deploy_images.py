"""`mlops images push` for real: the docker engine builds the images once, pushes them to a
real registry (Debian's `docker-registry`, the distribution v2 server, on loopback) and prints
the digests the registry answers with; a rerun keeps them; the release names them.

moto's ECR implements the ECR API but not the registry API (docker cannot push to it), so after
the push the test records the pushed manifest in moto's ECR with put_image, as the one real
ECR backend would hold it; the deploy's "is this digest in ECR" check then runs against moto.
What only a real account shows: the push through ECR's own registry endpoint with the
GetAuthorizationToken credentials, ECR's IMMUTABLE tags refusing an overwrite, and its scan.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.fixtures import docker_stack
from tests.fixtures.services import free_port, start_moto_server, stop_moto_server

docker_client = docker_stack.docker_client

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
MLOPS = Path(sys.executable).with_name("mlops")
SHA = "c0ffee" + "0" * 34
REGION = "eu-west-1"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`docker-registry serve` on 127.0.0.1 with its storage under tmp; fails if missing."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("docker-registry not installed (scripts/system_deps.sh installs it)")
    base = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {base / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"docker-registry did not start:\n{(base / 'registry.log').read_text()}"
                )
            time.sleep(0.2)
    yield host
    proc.terminate()
    proc.wait(10)


def _manifest(host: str, repo: str, ref: str) -> bytes:
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return bytes(resp.read())


def test_images_are_built_once_pushed_and_addressed_by_digest(
    docker_client: object, registry: str, tmp_path: Path
) -> None:
    moto = start_moto_server(tmp_path / "moto.log")
    try:
        env = {
            **os.environ,
            "ECR_SERVE_REPOSITORY_URL": f"{registry}/credit-risk-serve",
            "ECR_MLFLOW_REPOSITORY_URL": f"{registry}/credit-risk-mlflow",
            "GIT_SHA": SHA,
            "GITHUB_OUTPUT": str(tmp_path / "github_output"),
            "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        }  # fmt: skip

        def push() -> dict[str, object]:
            done = subprocess.run(
                [str(MLOPS), "images", "push", "--output", str(tmp_path / "images.json")],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            return dict(json.loads(done.stdout))

        # When CD pushes the images of one commit
        first = push()
        images = dict(first["images"])  # type: ignore[call-overload]
        # Then each is named by the digest the registry holds for <repo>:<git sha> (mlflow,
        # which carries no commit: <repo>:inputs-<hash>, tests/integration/test_mlflow_image.py)
        from ml.deploy.images import push_tag

        for target in ("serve", "mlflow"):
            name, _, digest = images[target].partition("@")
            assert name == f"{registry}/credit-risk-{target}"
            head = urllib.request.Request(
                f"http://{registry}/v2/credit-risk-{target}/manifests/{push_tag(target, SHA)}",
                method="HEAD", headers={"Accept": MANIFEST},
            )  # fmt: skip
            with urllib.request.urlopen(head, timeout=10) as resp:
                assert resp.headers["Docker-Content-Digest"] == digest
        assert sorted(first["built"]) == ["mlflow", "serve"]  # type: ignore[call-overload]
        outputs = (tmp_path / "github_output").read_text()
        assert f"serve_image={images['serve']}" in outputs
        # And the commit reached the image: the label, and serve's SERVE_GIT_COMMIT (/metadata)
        import docker

        client = docker.from_env()
        serve = client.images.get(f"{registry}/credit-risk-serve:{SHA}")
        assert serve.labels["org.opencontainers.image.revision"] == SHA
        assert f"SERVE_GIT_COMMIT={SHA}" in serve.attrs["Config"]["Env"]

        # When CD runs again for the same commit: nothing is rebuilt, the digests stay
        again = push()
        assert again["images"] == images
        assert again["built"] == []

        # And ECR (moto: manifest recorded by hand, see the module docstring) holds the digest,
        # so the deploy's image check passes for it and refuses another one
        from ml.deploy.ecr import ensure_in_ecr
        from ml.errors import ImageError

        ecr = boto3.client(
            "ecr", region_name=REGION, endpoint_url=moto.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        ecr.create_repository(repositoryName="credit-risk-serve")
        digest = images["serve"].partition("@")[2]
        ecr.put_image(
            repositoryName="credit-risk-serve", imageTag=SHA, imageDigest=digest,
            imageManifest=_manifest(registry, "credit-risk-serve", SHA).decode(),
        )  # fmt: skip
        ensure_in_ecr(ecr, images["serve"])
        with pytest.raises(ImageError, match="not in ECR"):
            ensure_in_ecr(ecr, images["serve"][:-8] + "00000000")
    finally:
        stop_moto_server(moto)
        _untag(registry)


def _untag(registry: str) -> None:
    """Drop this run's `<registry>/...:<sha>` tags (the layers stay, shared with the cache)."""
    import docker
    from docker.errors import APIError

    from ml.deploy.images import push_tag

    client = docker.from_env()
    for target in ("serve", "mlflow"):
        with contextlib.suppress(APIError):
            tag = push_tag(target, SHA)
            client.images.remove(f"{registry}/credit-risk-{target}:{tag}", noprune=True)


def test_push_names_every_missing_repository_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECR_")}
    done = subprocess.run(
        [str(MLOPS), "images", "push", "--git-sha", SHA], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "ECR_SERVE_REPOSITORY_URL, ECR_MLFLOW_REPOSITORY_URL" in done.stderr
