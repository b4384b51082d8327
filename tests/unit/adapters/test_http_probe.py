"""The HTTP probe against a real local server: status and JSON come back, an error status is an
answer, and no answer at all is `UnreachableError` (a certificate failure is covered over real
TLS in tests/integration/test_smoke_tls.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ml.adapters.http_probe import UnreachableError, get_json
from tests.fixtures.services import free_port

ANSWERS = {"/ok": (200, b'{"status": "ok"}'), "/down": (503, b"{}"), "/text": (200, b"hello")}


@contextmanager
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = ANSWERS[self.path]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_status_and_json_come_back_and_an_error_status_is_an_answer() -> None:
    with server() as base:
        assert get_json(f"{base}/ok", 5) == (200, {"status": "ok"})
        assert get_json(f"{base}/down", 5) == (503, None)
        assert get_json(f"{base}/text", 5) == (200, None)


def test_no_answer_is_unreachable_without_a_certificate_problem() -> None:
    with pytest.raises(UnreachableError) as caught:
        get_json(f"http://127.0.0.1:{free_port()}/ready", 5)
    assert caught.value.certificate is None
    assert "refused" in str(caught.value).lower()
