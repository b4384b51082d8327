"""Nothing secret and no stack trace leaves the process: not in /health, /metadata, error bodies
or log lines.

MLflow and requests put the tracking URI, with its `user:password@`, into their exception
messages; XGBoost appends a native stack trace to its own. Every text that leaves goes through
`scrub`: credentials in any URI become `user:***@`, the configured secrets (the URI's password,
the API token, MLflow and AWS credentials from the environment) become `***`, native stack traces
are cut, and the rest is one line of bounded length. `install_log_redaction` applies it to every
log record of the process (a record factory, so handlers configured by uvicorn or MLflow are
covered too) and turns an exception into one line naming its type and where it was raised.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

# scheme://user:password@ or scheme://token@ (userinfo ends at the first @ before any / or space)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/@]+)@")
_NATIVE_TRACE = re.compile(r"\s*Stack trace:.*", re.DOTALL)
_ENV_SECRETS = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_MIN_SECRET = 4  # shorter strings would blank out ordinary words; URIs are caught by pattern
MAX_REASON = 300

_secrets: set[str] = set()


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:***@" if colon else f"{match.group('scheme')}***@"


def scrub(text: str, limit: int = MAX_REASON, secrets: Iterable[str] = ()) -> str:
    """`text` as one line of at most `limit` characters, without credentials or stack traces."""
    text = _NATIVE_TRACE.sub("", text)
    text = _USERINFO.sub(_hide_userinfo, text)
    for secret in (*_secrets, *secrets):
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def uri_secrets(uri: str | None) -> set[str]:
    """The password of `scheme://user:password@host` (raw and decoded), or a bare token."""
    if not uri:
        return set()
    parts = urlsplit(uri)
    found = {parts.password} if parts.password else set()
    if parts.username and parts.password is None and "@" in parts.netloc:
        found.add(parts.username)  # https://token@host
    return found | {unquote(s) for s in found}


def register_secrets(values: Iterable[str | None]) -> None:
    """Add values to hide everywhere, with the credentials found in the environment."""
    _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)
    _secrets.update(v for k in _ENV_SECRETS if len(v := os.environ.get(k, "")) >= _MIN_SECRET)


def one_line(exc: BaseException) -> str:
    """'TypeError: message (serve/routes/predict.py:42)': the exception and where it was raised,
    instead of a traceback."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" ({_short_path(last.filename)}:{last.lineno})"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def _short_path(path: str) -> str:
    for marker in ("/site-packages/", "/serve/", "/ml/"):
        if marker in path:
            tail = path.rsplit(marker, 1)[1]
            return tail if marker == "/site-packages/" else marker.strip("/") + "/" + tail
    return os.path.basename(path)


_installed = False


def install_log_redaction(secrets: Iterable[str | None] = ()) -> None:
    """Scrub every log record the process creates from now on (idempotent)."""
    global _installed
    register_secrets(secrets)
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact(record)
        return record

    logging.setLogRecordFactory(factory)
    logging.captureWarnings(True)  # warnings.warn text goes through the same factory


def _redact(record: logging.LogRecord) -> None:
    if record.name.startswith("uvicorn.access"):
        return  # its formatter reads record.args; off in serve.server anyway
    try:
        message = record.getMessage()
    except Exception:  # a caller's bad format arguments must not break logging
        message = f"{record.msg!r} {record.args!r}"
    if record.exc_info and record.exc_info[1] is not None:
        message = f"{message}: {one_line(record.exc_info[1])}"
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    record.msg = scrub(message, limit=4000)
    record.args = ()
