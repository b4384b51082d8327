"""One JSON line per prediction request: request id, model version, features, output, latency.

Written straight to stdout, not through the `logging` module (a LogRecord, the handler lock and
the formatter), and encoded with msgspec, which takes the parsed records as they are: several
times cheaper per line than `logging` with `json` (docs/performance.md). Each line is one `write`
and a flush from the event-loop thread, so lines never interleave and none waits in a buffer.
The line's fields are a contract with monitoring: add fields, never rename or drop one. A request
that asked for reasons adds `reasons`: per record, the decline's reason codes (feature names,
never a text, never a protected attribute) or null (ml/monitoring/logs.py reads both forms).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, TextIO

import msgspec
import numpy as np

from serve.request_parser import ParsedRequest

_MAX_REQUEST_ID = 128


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID (trimmed to something safe to log), or a new one."""
    if header:
        cleaned = "".join(ch for ch in header[:_MAX_REQUEST_ID] if ch.isprintable())
        if cleaned:
            return cleaned
    return uuid.uuid4().hex


class PredictionLog:
    """Where prediction lines go; `enabled=False` (SERVE_LOG_PREDICTIONS=false) drops them."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled

    def write(
        self,
        *,
        rid: str,
        model_name: str,
        model_version: str,
        request: ParsedRequest,
        probabilities: np.ndarray,
        decisions: list[str],
        latency_s: float,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write the line (nothing to build when disabled); `extra` adds fields (by-id: the
        applicant ids and the feature snapshot)."""
        if not self.enabled:
            return
        features: Any = request.records  # dicts or msgspec structs: msgspec encodes both
        if request.records_json is not None:
            features = msgspec.Raw(request.records_json)
        line = {
            "ts": round(time.time(), 3),
            "event": "prediction",
            "request_id": rid,
            "model": model_name,
            "model_version": model_version,
            "n": len(request.records),
            "features": features,
            "probability": probabilities.tolist(),  # as in the response, unrounded
            "decision": decisions,
            "latency_ms": round(latency_s * 1000, 3),
        }
        if extra:
            line.update(extra)
        stream = self.stream or sys.stdout  # looked up late: tests and uvicorn may swap stdout
        stream.write(msgspec.json.encode(line).decode() + "\n")
        stream.flush()
