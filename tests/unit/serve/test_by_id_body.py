"""POST /predict/by-id bodies (serve/routes/predict_by_id.py): what is accepted, and a 422 that
names the problem for everything else; the feature store's settings stay secret."""

from __future__ import annotations

import pytest

from serve.errors import InvalidInputError
from serve.routes.predict_by_id import parse_ids
from serve.settings import ServeSettings


def test_ids_as_strings_or_integers() -> None:
    assert parse_ids(b'{"ids": ["1", 42, "A-7.x_"]}', 10) == ["1", "42", "A-7.x_"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"ids": []}', "ids"),
        (b'{"ids": ["1", "2", "3"]}', "ids"),
        (b'{"ids": ["a:b"]}', "ids.0"),
        (b'{"ids": ["1", ""]}', "ids.1"),
        (b'{"ids": [1.5]}', "body"),
        (b'{"ids": ["1"], "extra": 1}', "body"),
        (b'{"records": []}', "body"),
        (b"not json", "body"),
    ],
)
def test_bad_bodies_are_a_422_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_ids(body, 2)
    assert caught.value.detail[0]["field"] == field


def test_the_redis_token_and_url_password_never_leave_the_process() -> None:
    settings = ServeSettings(
        features_redis_url="rediss://:url-password-123456@cache:6379/0",
        features_redis_auth_token="token-0123456789abcdef",
    )

    shown = settings.redacted()

    assert {"url-password-123456", "token-0123456789abcdef"} <= settings.secrets()
    assert shown["features_redis_auth_token"] == "**********"
    assert "url-password" not in shown["features_redis_url"]


def test_a_placeholder_token_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="SERVE_FEATURES_REDIS_AUTH_TOKEN is a placeholder"):
        ServeSettings(environment="staging", model_path="/m", features_redis_auth_token="changeme")
