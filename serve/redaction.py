"""Nothing secret and no stack trace leaves the process: not in /health, /metadata, error bodies,
log lines, or anything the `mlops` CLI prints or writes. The one redaction of the repository:
serve and the CLI (ml.cli, ml.adapters) both use it; it imports the standard library only.

MLflow and requests put the tracking URI, with its `user:password@`, into their exception
messages; XGBoost appends a native stack trace to its own. Every text that leaves goes through
`scrub`: credentials in any URI become `user:***@`, the configured secrets (the URI's password,
the API token, MLflow and AWS credentials from the environment) become `***`, native stack traces
are cut, and the rest is one line of bounded length. `install_log_redaction` applies it to every
log record of the process (a record factory, so handlers configured by uvicorn or MLflow are
covered too) and turns an exception into one line naming its type and where it was raised.
`redact` is the same masking without the one-line shaping (for multi-line text: reports, PR
comments), and `RedactingStream` applies it to everything a process prints (the CLI wraps its
stdout and stderr in one, which covers MLflow's own `print`s such as "View run … at: URL").
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import unquote, urlsplit

# scheme://user:password@ or scheme://token@ (userinfo ends at the first @ before any / or space)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/@]+)@")
_NATIVE_TRACE = re.compile(r"\s*Stack trace:.*", re.DOTALL)
# Credentials that have a recognisable shape wherever they appear (headers, config dumps, tokens).
_SHAPES = (
    # Authorization: Bearer xyz / "authorization": "Basic xyz" / Proxy-Authorization
    re.compile(
        r"(?P<keep>authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)?\s*)[^\s'\",}]+",
        re.IGNORECASE,
    ),
    # aws_secret_access_key = x, AWS_SECRET_ACCESS_KEY=x, "SecretAccessKey": "x", session tokens
    re.compile(
        r"(?P<keep>(?:aws_secret_access_key|aws_session_token|secretaccesskey|sessiontoken"
        r"|mlflow_tracking_password|mlflow_tracking_token)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+",
        re.IGNORECASE,
    ),
    # GitHub tokens (classic, fine-grained, app installation, OAuth)
    re.compile(r"(?P<keep>)\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
)
_ENV_SECRETS = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "SERVE_API_TOKEN",
    "NOTIFY_WEBHOOK_URL",
)
# URIs whose userinfo password is a secret wherever it shows up (even without the URI around it)
_ENV_URIS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_TRACKING_URI", "SERVE_TRACKING_URI")
_MIN_SECRET = 4  # shorter strings would blank out ordinary words; URIs are caught by pattern
MAX_REASON = 300

_secrets: set[str] = set()


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:***@" if colon else f"{match.group('scheme')}***@"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every credential masked, its layout kept: URI userinfo, registered and
    environment secrets, Authorization headers, AWS secret keys, GitHub tokens."""
    text = _USERINFO.sub(_hide_userinfo, text)
    for shape in _SHAPES:
        text = shape.sub(r"\g<keep>***", text)
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted({*_secrets, *secrets}, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, "***")
    return text


def scrub(text: str, limit: int = MAX_REASON, secrets: Iterable[str] = ()) -> str:
    """`text` as one line of at most `limit` characters, without credentials or stack traces."""
    text = redact(_NATIVE_TRACE.sub("", text), secrets)
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
    for key in _ENV_URIS:
        _secrets.update(s for s in uri_secrets(os.environ.get(key)) if len(s) >= _MIN_SECRET)


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


class RedactingStream(io.TextIOBase):
    """A text stream that masks credentials (`redact`) in everything written to it.

    Text is held until a line ends (or `flush`), so a secret written in two pieces is still
    seen whole. No `buffer` attribute on purpose: click and others would write bytes to it,
    around the masking.
    """

    def __init__(self, target: IO[str]) -> None:
        super().__init__()
        self.target = target
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.target, "errors", None) or "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending += text
            cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
            if cut >= 0:
                done, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
                self.target.write(redact(done))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.target.write(redact(self._pending))
                self._pending = ""
        self.target.flush()


def redact_standard_streams(logs: bool = True) -> None:
    """Wrap `sys.stdout` and `sys.stderr` in a `RedactingStream` (idempotent), and with `logs`
    mask every log record of the process too. Secrets come from the environment."""
    if logs:
        install_log_redaction()
    else:
        register_secrets(())
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
