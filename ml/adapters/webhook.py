"""A Slack-compatible incoming webhook: one JSON POST, failures described without the address.

A webhook URL is a credential: nothing here puts it in an exception or a log line. What to send,
and how often to try, is `ml.notify`'s business. Plain urllib: the CLI verbs that notify must
start fast and need no HTTP library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


class WebhookError(Exception):
    """The receiver did not take the message. `str()` names the problem (status, error class),
    never the URL; `retryable` says whether trying again may help (connection errors, 429, 5xx).
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


def post(url: str, payload: Mapping[str, Any], timeout: float) -> None:
    """POST `payload` as JSON to `url` (http or https).

    Raises:
        WebhookError: the receiver refused it or could not be reached.
    """
    if not url.startswith(("https://", "http://")):
        raise WebhookError("the URL is not an http(s) URL", retryable=False)
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:  # its str has no address
        retryable = exc.code == 429 or exc.code >= 500
        raise WebhookError(f"HTTP {exc.code}", retryable=retryable) from None
    except urllib.error.URLError as exc:  # its reason has no address
        raise WebhookError(f"{type(exc.reason).__name__}: {exc.reason}", retryable=True) from None
    except Exception as exc:  # timeouts, resets: the class alone, it may carry the address
        raise WebhookError(type(exc).__name__, retryable=True) from None
