"""The webhook adapter against a real local receiver: a JSON POST arrives; a refusal or an
unreachable receiver is a `WebhookError` saying whether to retry, and never naming the URL."""

from __future__ import annotations

import pytest

from ml.adapters.webhook import WebhookError, post
from tests.fixtures.receiver import webhook_receiver
from tests.fixtures.services import free_port


def test_the_payload_arrives_as_json() -> None:
    with webhook_receiver() as receiver:
        post(receiver.url, {"text": "hello"}, timeout=5)
    assert receiver.received == [{"text": "hello"}]


@pytest.mark.parametrize(("fail_first", "reject", "reason", "retryable"), [
    (1, False, "HTTP 500", True),
    (0, True, "HTTP 400", False),
])  # fmt: skip
def test_a_refusal_says_whether_to_retry(
    fail_first: int, reject: bool, reason: str, retryable: bool
) -> None:
    with (
        webhook_receiver(fail_first=fail_first, reject=reject) as receiver,
        pytest.raises(WebhookError) as caught,
    ):
        post(receiver.url, {"text": "x"}, timeout=5)
    assert str(caught.value) == reason
    assert caught.value.retryable is retryable
    assert "secret-token" not in str(caught.value)


def test_an_unreachable_receiver_is_retryable_and_unnamed() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T000/B000/secret-token"
    with pytest.raises(WebhookError) as caught:
        post(url, {"text": "x"}, timeout=5)
    assert caught.value.retryable
    assert "secret-token" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


def test_a_url_that_is_not_http_is_refused_before_any_request() -> None:
    with pytest.raises(WebhookError, match="not an http") as caught:
        post("file:///etc/passwd", {"text": "x"}, timeout=5)
    assert not caught.value.retryable
