"""The pipeline's stale check (what `dvc status --json` means for a PR) and its stable files."""

from __future__ import annotations

import json
from pathlib import Path

from ml.pipeline import (
    nothing_changed_line,
    registered_from_lock,
    rounded,
    stale_message,
    stale_stages,
    write_json,
)
from ml.registry import VersionInfo


def test_missing_data_is_not_staleness() -> None:
    # A CI checkout that did not `dvc pull` lacks the data, not a correct lock
    status = {
        "ingest": [
            {"changed deps": {"data/2026-12.csv": "deleted"}},
            {"changed outs": {"build/pipeline/train.csv": "deleted"}},
        ],
        "data/2026-12.csv.dvc": [{"changed outs": {"data/2026-12.csv": "not in cache"}}],
    }
    assert stale_stages(status) == []


def test_a_changed_param_or_command_names_the_stage() -> None:
    status = {
        "train": [{"changed deps": {"config/train.yaml": {"modified": ["candidates"]}}}],
        "ingest": ["changed command"],
        "validate": [{"changed deps": {"build/pipeline/train.csv": "modified"}}],
    }
    stale = {s.stage: s.changes for s in stale_stages(status)}
    assert stale == {
        "train": ("params config/train.yaml: modified candidates",),
        "ingest": ("changed command",),
        "validate": ("build/pipeline/train.csv modified",),
    }
    message = stale_message(stale_stages(status))
    assert "stage train: params config/train.yaml: modified candidates" in message
    assert "dvc repro" in message


def test_stage_files_are_byte_stable(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_json(a, {"z": 1, "a": rounded({"roc_auc": 0.78156934503733})})
    write_json(b, {"a": rounded({"roc_auc": 0.7815693450373331}), "z": 1})
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text())["a"]["roc_auc"] == 0.781569


def _version(number: int, **tags: str) -> VersionInfo:
    return VersionInfo("credit-risk", number, "READY", "None", f"run{number}", "s3://x", tags)


def test_the_version_of_the_current_lock_is_found_newest_first() -> None:
    # Given versions registered from two locks (a retrain, then a forced rerun of the first)
    versions = [
        _version(1, dvc_lock_sha256="a" * 64, dvc_data_md5="d1", dvc_data_path="p"),
        _version(2, dvc_lock_sha256="b" * 64),
        _version(3, dvc_lock_sha256="a" * 64, dvc_data_md5="d1", dvc_data_path="p"),
        _version(4),  # trained outside the pipeline: no lock
    ]
    # Then the current lock's newest version is the one that holds the data
    found = registered_from_lock(versions, "a" * 64)
    assert found is not None
    assert found.version == 3
    line = nothing_changed_line(found, "a" * 64)
    assert "data p (DVC md5 d1)" in line
    assert "credit-risk version 3 (run run3)" in line
    # and a lock no version carries, or no lock, is something to register
    assert registered_from_lock(versions, "c" * 64) is None
    assert registered_from_lock(versions, None) is None
