"""What the deploy does in ECR: log in to push (`GetAuthorizationToken`), refuse an image ECR
does not hold before ECS changes, and tag a release's digests so the lifecycle policy keeps them.
The ECR client is passed in (ml.adapters.aws makes it)."""

from __future__ import annotations

import base64
from typing import Any

from ml.adapters import aws
from ml.adapters.registry_v2 import loopback
from ml.deploy.image_ref import ImageRef
from ml.errors import ImageError


def ecr_auth(registry: str) -> dict[str, str] | None:
    """docker/registry basic auth from ECR's `GetAuthorizationToken` (OIDC credentials), or
    None for a loopback registry (tests, local mirrors), which needs none."""
    if loopback(registry):
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        data = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    except (BotoCoreError, ClientError) as exc:
        raise ImageError(f"ECR login for {registry}: {exc}") from exc
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return {"username": user, "password": password}


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
