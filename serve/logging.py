"""One JSON line per prediction request: request id, model version, features, output, latency."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

import numpy as np

LOGGER_NAME = "serve.predictions"
_MAX_REQUEST_ID = 128


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID (trimmed to something safe to log), or a new one."""
    if header:
        cleaned = "".join(ch for ch in header[:_MAX_REQUEST_ID] if ch.isprintable())
        if cleaned:
            return cleaned
    return uuid.uuid4().hex


def configure(level: int = logging.INFO) -> logging.Logger:
    """Send prediction lines to stdout as they are (the message is already JSON)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def log_prediction(
    logger: logging.Logger,
    *,
    rid: str,
    model_name: str,
    model_version: str,
    records: list[dict[str, Any]],
    probabilities: np.ndarray,
    decisions: list[str],
    latency_s: float,
) -> None:
    """Write the line (skipped cheaply when the logger is disabled)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    line = {
        "ts": round(time.time(), 3),
        "event": "prediction",
        "request_id": rid,
        "model": model_name,
        "model_version": model_version,
        "n": len(records),
        "features": records,
        "probability": [round(float(p), 6) for p in probabilities],
        "decision": decisions,
        "latency_ms": round(latency_s * 1000, 3),
    }
    logger.info(json.dumps(line, separators=(",", ":")))
