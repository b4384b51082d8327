"""HTTP probes of a deployed service (the API, the MLflow server): one GET, its status and JSON.

The smoke test's policy (what must answer what, how long to retry) is `ml.deploy.smoke`; this
module only asks. Plain urllib: `mlops deploy` must start fast and needs no HTTP library.
TLS is verified against the process's trust store (`SSL_CERT_FILE`).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class UnreachableError(Exception):
    """No HTTP answer at all. `certificate` is the TLS verification message when the server's
    certificate was refused: no retry fixes that, unlike a refused or reset connection."""

    def __init__(self, message: str, certificate: str | None = None) -> None:
        super().__init__(message)
        self.certificate = certificate


def get_json(url: str, timeout: float) -> tuple[int, Any]:
    """(status, parsed JSON body or None) of `GET url`; an HTTP error status is an answer too.

    Raises:
        UnreachableError: no connection, a timeout, or a refused TLS certificate.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError as exc:  # URLError is an OSError; so are timeouts and resets
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise UnreachableError(str(exc), certificate=str(reason.verify_message)) from None
        raise UnreachableError(str(exc)) from None
    try:
        return status, json.loads(body or b"null")
    except json.JSONDecodeError:
        return status, None
