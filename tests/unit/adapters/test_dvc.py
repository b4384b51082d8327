"""The DVC adapter: its configuration, lock and remote layout readers, and a missing binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.adapters import dvc
from ml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_config_has_a_remote_no_credentials_and_no_phoning_home() -> None:
    text = (ROOT / ".dvc" / "config").read_text()
    assert dvc.remote_url(ROOT) == "s3://credit-risk-mlflow-artifacts-000000000000/dvc"
    assert "analytics = false" in text
    assert "check_update = false" in text
    for secret in ("access_key", "secret", "session_token", "credentialpath", "profile"):
        assert secret not in text.lower()


def test_config_local_overrides_the_url_as_dvc_does(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = platform\n['remote \"platform\"']\n    url = s3://a/dvc\n"
    )
    assert dvc.remote_url(tmp_path) == "s3://a/dvc"
    (tmp_path / ".dvc" / "config.local").write_text(
        "['remote \"platform\"']\n    url = s3://b/dvc\n    endpointurl = http://127.0.0.1:1\n"
    )
    assert dvc.remote_url(tmp_path) == "s3://b/dvc"


def test_an_object_lives_where_dvc_3_puts_it() -> None:
    url = dvc.object_url("s3://bucket/dvc/", "9da6ffabcd6f9b56fd4e161a1e66dbfc")
    assert url == "s3://bucket/dvc/files/md5/9d/a6ffabcd6f9b56fd4e161a1e66dbfc"


def test_a_local_remote_is_checked_on_disk(tmp_path: Path) -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    assert not dvc.remote_has(str(tmp_path), md5)
    obj = tmp_path / "files" / "md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"x")
    assert dvc.remote_has(str(tmp_path), md5)


def test_the_committed_lock_records_every_stage_output() -> None:
    outputs = {o.path: o.stage for o in dvc.locked_outputs(ROOT)}
    assert outputs["build/pipeline/train.csv"] == "ingest"
    assert outputs["reports/metrics.json"] == "evaluate"
    assert len(dvc.lock_sha256(ROOT) or "") == 64


def test_a_missing_dvc_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVC_BIN", str(tmp_path / "nowhere" / "dvc"))
    with pytest.raises(ConfigError, match="make dvc-install"):
        dvc.binary(tmp_path)


def test_dvc_runs_without_analytics_and_with_the_s3_compatible_checksum_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    env = dvc.environment()
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "WHEN_REQUIRED"
