"""Prediction-log lines from serve's own writer, so the reader is tested on the real format."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.features import FEATURES

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"


def prediction_lines(
    records: Sequence[dict[str, Any]],
    scores: Sequence[float],
    *,
    version: str = "3",
    model: str = "credit-risk",
    per_request: int = 10,
    threshold: float = 0.5,
) -> str:
    """Lines as `serve.logging.PredictionLog` writes them, `per_request` records a line."""
    from serve.logging import PredictionLog
    from serve.request_parser import ParsedRequest

    out = io.StringIO()
    log = PredictionLog(out)
    for start in range(0, len(records), per_request):
        chunk = list(records[start : start + per_request])
        probs = np.asarray(scores[start : start + per_request], dtype=np.float64)
        log.write(
            rid=f"req-{start}",
            model_name=model,
            model_version=version,
            request=ParsedRequest(chunk, np.zeros((len(chunk), 1), dtype=np.float32)),
            probabilities=probs,
            decisions=["decline" if p >= threshold else "approve" for p in probs],
            latency_s=0.002,
        )
    return out.getvalue()


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    """The real 30,000-row data set (features and target)."""
    return pd.read_csv(DATA)


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-like records with ints where the contract has ints."""
    return [
        {k: (int(v) if float(v).is_integer() else float(v)) for k, v in row.items()}
        for row in frame[FEATURES].to_dict("records")
    ]
