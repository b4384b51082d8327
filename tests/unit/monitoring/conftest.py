"""The real data set for the monitoring unit tests; log lines come from tests.fixtures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    """The real 30,000-row data set (features and target)."""
    return pd.read_csv(DATA)
