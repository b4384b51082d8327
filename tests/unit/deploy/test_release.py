"""Release values: what a release must name, and what may never change."""

from __future__ import annotations

import pytest

from ml.deploy import release as releases
from ml.errors import ReleaseError

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:" + "a" * 64


def test_a_release_is_built_from_digests_and_model_versions() -> None:
    rel = releases.build("r1", "f" * 40, IMAGE, None, {"credit-risk": 3})
    assert rel.content() == {
        "id": "r1", "git_sha": "f" * 40, "serve_image": IMAGE, "mlflow_image": None,
        "models": {"credit-risk": 3},
    }  # fmt: skip
    assert releases.release_tag("r1") == "release.r1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"serve_image": IMAGE.split("@")[0] + ":latest"}, "not addressed by digest"),
        ({"mlflow_image": "mlflow@sha256:" + "a" * 64}, "not addressed by digest"),
        ({"models": {}}, "at least one model"),
        ({"models": {"credit-risk": 0}}, "must be positive"),
        ({"release_id": "../x"}, "release id"),
    ],
)
def test_bad_releases_are_refused_with_the_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "release_id": "r1", "git_sha": "f" * 40, "serve_image": IMAGE, "mlflow_image": None,
        "models": {"credit-risk": 1},
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(ReleaseError, match=message):
        releases.build(**args)  # type: ignore[arg-type]


def test_verification_is_required_and_named() -> None:
    rel = releases.build("r1", "f" * 40, IMAGE, None, {"credit-risk": 1})
    with pytest.raises(ReleaseError, match=r"missing verified\.staging.*never deployed it"):
        releases.require_verified(rel, "staging", None)
    verified = rel.model_copy(
        update={"verified": {"staging": releases.Verification(time="t", checks=["e2e"])}}
    )
    releases.require_verified(verified, "staging", None)
    assert verified.content() == rel.content()  # verification is history, not content
