"""Apply records: one tag per apply, keyed by environment and commit; the older single tag read."""

from __future__ import annotations

import json

from ml.promotions.records import has_record, record_tag, records
from ml.registry import VersionInfo


def _version(tags: dict[str, str]) -> VersionInfo:
    return VersionInfo("credit-risk", 1, "READY", "Production", None, "s3://x", tags)


def test_the_key_names_environment_and_commit_in_characters_mlflow_accepts() -> None:
    assert record_tag("production", "3f" * 20) == f"promotion.production.{'3f' * 20}"
    assert record_tag("staging", "feature/x y") == "promotion.staging.feature-x-y"
    assert record_tag("staging", "") == "promotion.staging.unknown"
    assert len(record_tag("production", "a" * 300)) == len("promotion.production.") + 64


def test_records_of_both_formats_come_oldest_first_and_per_environment() -> None:
    info = _version(
        {
            "promotion.production": json.dumps({"time": "2030-01-02T00:00:00Z", "git_sha": "b"}),
            "promotion.production.c": json.dumps({"time": "2030-01-03T00:00:00Z"}),
            "promotion.production.a": json.dumps({"time": "2030-01-01T00:00:00Z"}),
            "promotion.staging.a": "not json",
            "promotion.productionish": "{}",
        }
    )
    assert [r["time"] for r in records(info, "production")] == [
        "2030-01-01T00:00:00Z",
        "2030-01-02T00:00:00Z",
        "2030-01-03T00:00:00Z",
    ]
    assert records(info, "staging") == [{"raw": "not json"}]
    assert has_record(info, "staging")
    assert not has_record(_version({"promotion.productionish": "{}"}), "production")
