"""Bounded waits on the services the CLI calls: the MLflow registry, S3 and the AWS APIs.

Left to their defaults, MLflow retries a refused connection seven times with exponential
backoff (about four minutes) and botocore waits 60 s per read, silently. A CLI process (CI, CD,
Airflow, a terminal) gets the budget below instead, set once at start-up by `apply_defaults`
(an environment variable a user sets wins), and a progress line on stderr once a call has
waited PROGRESS_AFTER_S. When the budget runs out the caller gets one line naming the service,
where it was (credentials masked) and what to do; the CLI exits 4. docs/cli.md has the budget
per verb.

Serving sets its own, shorter budget (no retries: its watcher polls again on its schedule).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

# MLflow REST: each request gets REQUEST_TIMEOUT_S per socket operation and RETRIES retries
# with BACKOFF_S * 2**n (+ jitter up to 1 s) between them. A refused connection fails in ~4 s;
# a registry that accepts and never answers in ~35 s.
MLFLOW_RETRIES = 2
MLFLOW_BACKOFF_S = 1
MLFLOW_TIMEOUT_S = 10
# botocore: connect and read timeouts, and total attempts (standard retry mode).
AWS_CONNECT_TIMEOUT_S = 5
AWS_READ_TIMEOUT_S = 30
AWS_MAX_ATTEMPTS = 3
PROGRESS_AFTER_S = 5.0

_progress = False
_CONNECTION = re.compile(
    r"Max retries exceeded|Connection refused|ConnectionError|NewConnectionError|"
    r"timed out|RemoteDisconnected|Connection aborted|ConnectTimeout|ReadTimeout|"
    r"Failed to establish a new connection|Name or service not known|"
    r"Could not connect to the endpoint|EndpointConnectionError|Connection reset",
    re.IGNORECASE,
)
_POOL_HOST = re.compile(r"host='(?P<host>[^']+)', port=(?P<port>\d+)")


def apply_defaults() -> None:
    """The CLI's budget for MLflow and botocore, through their environment variables, and the
    progress lines on stderr. Idempotent; variables already set are kept."""
    global _progress
    _progress = True
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", MLFLOW_RETRIES),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", MLFLOW_BACKOFF_S),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", MLFLOW_TIMEOUT_S),
        ("AWS_MAX_ATTEMPTS", AWS_MAX_ATTEMPTS),
        ("AWS_RETRY_MODE", "standard"),
        ("AWS_METADATA_SERVICE_TIMEOUT", 2),
        ("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1),
    ):
        os.environ.setdefault(key, str(value))


def boto_config() -> Any:
    """A botocore `Config` with the connect/read timeouts (not settable by environment)."""
    from botocore.config import Config

    return Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_S,
        read_timeout=AWS_READ_TIMEOUT_S,
        retries={"max_attempts": AWS_MAX_ATTEMPTS, "mode": "standard"},
    )


def where(uri: str | None) -> str:
    """`scheme://host:port` of a URI: no userinfo, path or query (nothing secret to print)."""
    if not uri:
        return "an unknown address"
    parts = urlsplit(uri)
    if not parts.hostname:
        return parts.scheme + ":" if parts.scheme else "a local store"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def is_connection_failure(exc: BaseException) -> bool:
    """A service that could not be reached or did not answer in time (as opposed to one that
    answered with an error)."""
    for cls in type(exc).__mro__:
        module = cls.__module__
        if module.startswith(("requests", "urllib3", "botocore")) and re.search(
            r"Connect|Timeout|Endpoint|ProtocolError", cls.__name__
        ):
            return True
        if cls.__name__ in ("TimeoutError", "ConnectionError") and module == "builtins":
            return True
    return bool(_CONNECTION.search(str(exc)))


def unreachable_message(service: str, location: str, exc: BaseException, hint: str) -> str:
    """One line: which service, where, how it failed, the budget spent, what to do."""
    text = str(exc)
    if location == "an unknown address" and (found := _POOL_HOST.search(text)):
        location = f"{found.group('host')}:{found.group('port')}"
    how = "did not answer in time" if re.search("timed out|timeout", text, re.I) else "is down"
    if re.search("refused|NewConnectionError|establish a new connection", text, re.I):
        how = "refused the connection"
    budget = (
        f"{MLFLOW_RETRIES + 1} attempts, {MLFLOW_TIMEOUT_S} s each"
        if service.startswith("the MLflow")
        else f"{AWS_MAX_ATTEMPTS} attempts"
    )
    return f"{service} at {location} {how} ({budget}); {hint}"


@contextmanager
def waiting(service: str, location: str) -> Iterator[None]:
    """Print 'waiting for SERVICE at LOCATION… (N s)' on stderr every PROGRESS_AFTER_S while the
    block runs (CLI processes only: `apply_defaults` switches it on)."""
    if not _progress:
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not done.wait(PROGRESS_AFTER_S):
            waited = time.monotonic() - started
            print(f"waiting for {service} at {location}… ({waited:.0f} s)", file=sys.stderr)
            sys.stderr.flush()

    thread = threading.Thread(target=report, name="wait-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
