"""A container registry's own HTTP API (distribution v2: `HEAD /v2/<name>/manifests/<ref>`):
the source of truth for "is this tag there, and which digest is it". ECR serves it with the
basic-auth token of `GetAuthorizationToken` (ml/deploy/ecr.py), and so does any registry v2 (the
tests push to Debian's `docker-registry` on loopback). urllib only."""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request

from ml.errors import ImageError

_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def loopback(registry: str) -> bool:
    """True for a registry on this machine (plain HTTP, no credentials: tests, local mirrors)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    return host in ("localhost", "127.0.0.1", "[::1]") or host.startswith("127.")


def manifest_digest(
    registry: str, repository: str, tag: str, auth: dict[str, str] | None
) -> str | None:
    """The digest the registry holds for `repository:tag` (HEAD manifests), or None when it
    has none.

    Loopback registries speak plain HTTP (as the docker engine allows them to); everything else
    HTTPS.
    """
    scheme = "http" if loopback(registry) else "https"
    url = f"{scheme}://{registry}/v2/{repository}/manifests/{tag}"
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
        raise ImageError(f"registry {registry}: HEAD {repository}:{tag} → {exc.code}") from exc
    except (OSError, urllib.error.URLError) as exc:
        raise ImageError(f"registry {registry} unreachable: {exc}") from exc
    if not digest or not DIGEST.match(digest):
        raise ImageError(f"registry {registry} named no digest for {repository}:{tag}")
    return str(digest)
