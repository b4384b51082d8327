"""config/monitoring.yaml parses strictly: the committed file loads, mistakes name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import ConfigError
from ml.monitoring.config import load_monitoring_config
from tests.unit.monitoring.conftest import ROOT


def test_the_committed_file_loads() -> None:
    config = load_monitoring_config(ROOT / "config" / "monitoring.yaml")
    assert config.drift.max_drift_share == 0.2
    assert config.drift.threshold_for("AGE") == config.drift.feature_threshold
    assert config.data_check.min_rows == 1000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("drift:\n  max_drift_shares: 0.2\n", "drift.max_drift_shares: Extra inputs"),
        ("drift:\n  max_drift_share: 2\n", "drift.max_drift_share: Input should be less"),
        ("drift:\n  numerical_method: magic\n", "drift.numerical_method"),
        ("drift: [\n", "YAML syntax error"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_monitoring_config(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"monitoring config not found: .*nope.yaml"):
        load_monitoring_config(tmp_path / "nope.yaml")


def test_per_feature_override() -> None:
    from ml.monitoring.config import Thresholds

    thresholds = Thresholds(feature_thresholds={"PAY_0": 0.05})
    assert thresholds.threshold_for("PAY_0") == 0.05
    assert thresholds.threshold_for("AGE") == 0.1
