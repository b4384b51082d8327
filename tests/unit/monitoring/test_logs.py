"""The prediction-log reader on serve's real line format: files, gzip, folders, prefixes
(CloudWatch export, compose), malformed lines counted and bounded, windows, bad locations."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.errors import ConfigError, DataError
from ml.features import FEATURES
from ml.monitoring.logs import Window, parse_duration, read_predictions
from tests.fixtures.prediction_logs import as_records, prediction_lines


@pytest.fixture
def sample(credit: pd.DataFrame) -> pd.DataFrame:
    return credit.head(50)


def test_reads_every_record_of_serves_own_lines(tmp_path: Path, sample: pd.DataFrame) -> None:
    # Given 50 records logged 10 per request, scores alternating around the threshold
    scores = [0.2, 0.7] * 25
    log = tmp_path / "api.log"
    log.write_text(prediction_lines(as_records(sample), scores, per_request=10))
    # When it is read
    frame, stats = read_predictions(str(log))
    # Then every record is a row with its features, score, decision and version
    assert (stats.requests, stats.records, stats.malformed) == (5, 50, 0)
    assert list(frame.columns[: len(FEATURES)]) == FEATURES
    np.testing.assert_allclose(frame[FEATURES].to_numpy(), sample[FEATURES].to_numpy())
    assert frame["score"].tolist() == scores
    assert frame["approved"].tolist() == [True, False] * 25
    assert set(frame["model_version"]) == {"3"}
    assert dict(stats.versions) == {"3": 50}


def test_gzip_folders_and_line_prefixes(tmp_path: Path, sample: pd.DataFrame) -> None:
    # Given a folder with a gzip file, a CloudWatch-export style file and a compose-style file
    lines = prediction_lines(as_records(sample), [0.1] * 50).splitlines()
    folder = tmp_path / "logs"
    (folder / "stream-a").mkdir(parents=True)
    (folder / "stream-a" / "000000.gz").write_bytes(gzip.compress("\n".join(lines[:2]).encode()))
    (folder / "export.log").write_text(
        "\n".join(f"2025-01-31T10:00:00.000Z {line}" for line in lines[2:4]) + "\n"
    )
    (folder / "compose.log").write_text(f"api-1  | {lines[4]}\n")
    # When the folder is read
    frame, stats = read_predictions(str(folder))
    # Then all three sources count
    assert stats.sources == 3
    assert len(frame) == 50


def test_other_lines_are_ignored_and_malformed_ones_counted(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    # Given uvicorn chatter, one truncated prediction line and one that does not add up
    good = prediction_lines(as_records(sample), [0.3] * 50, per_request=1).splitlines()
    truncated = good[0][: len(good[0]) // 2]
    mismatched = good[1].replace('"probability":[0.3]', '"probability":[0.3,0.4]')
    body = ["INFO:     Started server process [1]", truncated, mismatched, *good[2:]]
    log = tmp_path / "api.log"
    log.write_text("\n".join(body) + "\n")
    # When read with a bound that allows 2 bad lines in 50
    frame, stats = read_predictions(str(log), max_malformed_share=0.05)
    # Then the bad lines are skipped and counted, the first one named with its line number
    assert (stats.ignored, stats.malformed, len(frame)) == (1, 2, 48)
    assert stats.first_malformed is not None
    assert stats.first_malformed.startswith(f"{log}:2: ")


def test_too_many_malformed_lines_is_a_one_line_error(tmp_path: Path, sample: pd.DataFrame) -> None:
    good = prediction_lines(as_records(sample), [0.3] * 50, per_request=1).splitlines()
    bad = [line.replace('"features":[{', '"features":[{"AGE":"old",') for line in good[:5]]
    log = tmp_path / "api.log"
    log.write_text("\n".join(bad + good[5:]) + "\n")
    with pytest.raises(DataError) as caught:
        read_predictions(str(log), max_malformed_share=0.01)
    message = str(caught.value)
    assert "5 of 50 prediction lines" in message
    assert f"{log}:1:" in message
    assert "max_malformed_share" in message
    assert "\n" not in message


def test_missing_feature_is_a_missing_value_not_a_malformed_line(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    records = as_records(sample)
    del records[0]["AGE"]
    log = tmp_path / "api.log"
    log.write_text(prediction_lines(records, [0.3] * 50))
    frame, stats = read_predictions(str(log))
    assert stats.malformed == 0
    assert int(frame["AGE"].isna().sum()) == 1


def test_window_keeps_requests_in_range(tmp_path: Path, sample: pd.DataFrame) -> None:
    log = tmp_path / "api.log"
    log.write_text(prediction_lines(as_records(sample), [0.3] * 50))
    frame, _ = read_predictions(str(log))
    ts = float(frame["ts"].iloc[0])
    assert len(read_predictions(str(log), Window(start=ts - 60, end=ts + 60))[0]) == 50
    with pytest.raises(DataError, match=r"5 requests fall outside the window: widen --window"):
        read_predictions(str(log), Window(start=ts + 3600))


def test_no_predictions_and_no_files_say_what_to_do(tmp_path: Path) -> None:
    chatter = tmp_path / "api.log"
    chatter.write_text("INFO: Uvicorn running\n")
    with pytest.raises(DataError, match=r"no predictions in .*SERVE_LOG_PREDICTIONS=true"):
        read_predictions(str(chatter))
    with pytest.raises(DataError, match=r"prediction log not found: .*nowhere"):
        read_predictions(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no log files at"):
        read_predictions(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90m", 5400), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "soon", "0"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="bad duration"):
        parse_duration(text)


def test_lines_with_and_without_reason_codes_are_read_alike(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    # Given 20 records logged without reasons, then 30 by requests that asked for them
    records = as_records(sample)
    scores = [0.2, 0.7] * 25
    codes = [["PAY_0", "LIMIT_BAL"] if s >= 0.5 else None for s in scores]
    log = tmp_path / "api.log"
    log.write_text(
        prediction_lines(records[:20], scores[:20])
        + prediction_lines(records[20:], scores[20:], reasons=codes[20:], per_request=5)
    )
    # When it is read
    frame, stats = read_predictions(str(log))
    # Then every record is a row, and the reason codes given are counted
    assert (stats.requests, stats.records, stats.malformed) == (8, 50, 0)
    assert frame["score"].tolist() == scores
    assert stats.explained == 15
    assert stats.as_dict()["reason_codes"] == {"PAY_0": 15, "LIMIT_BAL": 15}


def test_reason_codes_that_do_not_line_up_make_the_line_malformed(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    # Given a line of 10 records carrying 9 reason lists
    records = as_records(sample)
    bad = prediction_lines(records[:10], [0.7] * 10, reasons=[["PAY_0"]] * 9)
    good = prediction_lines(records[10:], [0.7] * 40, per_request=1)
    log = tmp_path / "api.log"
    log.write_text(bad + good)
    # When read
    frame, stats = read_predictions(str(log), max_malformed_share=0.05)
    # Then it is counted as malformed, naming the mismatch
    assert (stats.malformed, len(frame)) == (1, 40)
    assert stats.first_malformed is not None
    assert "10 records but 9 reason lists" in stats.first_malformed
