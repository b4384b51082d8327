"""The HTTP probe against a real local server: status and JSON come back, an error status is an
answer, and no answer at all is `UnreachableError` (a certificate failure is covered over real
TLS in tests/integration/test_smoke_tls.py)."""

from __future__ import annotations

import pytest

from ml.adapters.http_probe import UnreachableError, get_json
from tests.fixtures.local_http import canned
from tests.fixtures.services import free_port

ANSWERS = {"/ok": (200, b'{"status": "ok"}'), "/down": (503, b"{}"), "/text": (200, b"hello")}


def test_status_and_json_come_back_and_an_error_status_is_an_answer() -> None:
    with canned(ANSWERS) as base:
        assert get_json(f"{base}/ok", 5) == (200, {"status": "ok"})
        assert get_json(f"{base}/down", 5) == (503, None)
        assert get_json(f"{base}/text", 5) == (200, None)


def test_no_answer_is_unreachable_without_a_certificate_problem() -> None:
    with pytest.raises(UnreachableError) as caught:
        get_json(f"http://127.0.0.1:{free_port()}/ready", 5)
    assert caught.value.certificate is None
    assert "refused" in str(caught.value).lower()
