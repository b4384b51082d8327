"""Lineage: which files count as DVC data, and when a lock is attributed to a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import lineage

MD5 = "9da6ffabcd6f9b56fd4e161a1e66dbfc"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = platform\n['remote \"platform\"']\n    url = s3://b/dvc\n"
    )
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  ingest:\n    outs:\n    - path: build/pipeline/train.csv\n"
        f"      hash: md5\n      md5: {MD5}\n      size: 10\n"
    )
    (tmp_path / "build" / "pipeline").mkdir(parents=True)
    (tmp_path / "build" / "pipeline" / "train.csv").write_text("a\n")
    (tmp_path / "other.csv").write_text("a\n")
    return tmp_path


def test_a_pipeline_output_has_lineage_and_other_files_none(repo: Path) -> None:
    found = lineage.of_file(str(repo / "build" / "pipeline" / "train.csv"))
    assert found is not None
    assert found.tags() == {
        "dvc_data_md5": MD5,
        "dvc_data_path": "build/pipeline/train.csv",
        "dvc_remote": "s3://b/dvc",
    }
    assert found.dataset_source == f"s3://b/dvc/files/md5/9d/{MD5[2:]}"
    assert lineage.of_file(str(repo / "other.csv")) is None
    assert lineage.of_file("https://example.invalid/data.csv") is None


def test_the_lock_is_attributed_only_to_a_run_whose_data_it_names(repo: Path) -> None:
    tags = {"dvc_data_md5": MD5, "dvc_data_path": "build/pipeline/train.csv"}
    assert set(lineage.lock_tags(tags, repo)) == {"dvc_lock_sha256"}
    assert lineage.lock_tags({**tags, "dvc_data_md5": "0" * 32}, repo) == {}
    assert lineage.lock_tags({}, repo) == {}


def test_the_gate_says_nothing_for_a_version_without_dvc_data() -> None:
    assert list(lineage.data_in_remote({"git_sha": "abc"}, "m v1")) == []


def test_the_gate_names_the_version_and_the_missing_object(tmp_path: Path) -> None:
    tags = {"dvc_data_md5": MD5, "dvc_remote": str(tmp_path), "dvc_data_path": "d.csv"}
    ((name, passed, detail),) = lineage.data_in_remote(tags, "credit-risk v3")
    assert (name, passed) == ("data_in_remote", False)
    assert "credit-risk v3" in detail
    assert f"files/md5/9d/{MD5[2:]}" in detail
    obj = tmp_path / "files" / "md5" / "9d" / MD5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_text("x")
    ((_, passed, _),) = lineage.data_in_remote(tags, "credit-risk v3")
    assert passed
