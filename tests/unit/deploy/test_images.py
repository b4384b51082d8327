"""Image references: by digest for releases and task definitions, by tag only to push."""

from __future__ import annotations

import pytest

from ml.deploy.image_ref import ImageRef, repository_ref
from ml.deploy.images import inputs_hash
from ml.errors import ConfigError

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "b" * 64


def test_digest_and_tag_references_parse() -> None:
    ref = ImageRef.parse(f"{ECR}/team/credit-risk-serve@{DIGEST}")
    assert (ref.registry, ref.repository, ref.digest, ref.tag) == (
        ECR, "team/credit-risk-serve", DIGEST, None,
    )  # fmt: skip
    assert ImageRef.parse("127.0.0.1:5000/serve:abc").tag == "abc"
    assert repository_ref(f"{ECR}/credit-risk-serve", "X").by_digest(DIGEST) == (
        f"{ECR}/credit-risk-serve@{DIGEST}"
    )


@pytest.mark.parametrize(
    "bad", ["credit-risk-serve", f"{ECR}/serve@sha256:short", f"{ECR}/serve", "serve@" + DIGEST]
)
def test_bad_references_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="bad image reference"):
        ImageRef.parse(bad)


def test_repository_url_must_not_carry_a_tag() -> None:
    with pytest.raises(ConfigError, match="ECR_SERVE_REPOSITORY_URL"):
        repository_ref(f"{ECR}/serve:latest", "ECR_SERVE_REPOSITORY_URL")


def test_the_git_sha_is_a_build_input_of_serve_only() -> None:
    # A serve image built for another commit carries another SERVE_GIT_COMMIT: never reuse it.
    assert inputs_hash("serve", "base", "a" * 40) != inputs_hash("serve", "base", "b" * 40)
    # The mlflow image carries no commit: another merge is the same image
    # (tests/integration/test_mlflow_image.py pushes it twice).
    assert inputs_hash("mlflow", "base", "a" * 40) == inputs_hash("mlflow", "base", "b" * 40)
