"""Reason codes in serve: the texts come with the version (its contract.json), not from a
config/ directory the serve image lacks, and the prediction log line carries the codes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from serve_test_helpers import make_client, record

from ml.features import CONTRACT
from ml.governance.config import load_governance
from ml.governance.reasons import GOVERNANCE_ENV
from ml.governance.training import contract_record
from serve.settings import ServeSettings

REPO = Path(__file__).resolve().parents[3]


def _version_dir(tmp: Path, model_dir: Path, *, texts: dict[str, str] | None) -> Path:
    """A mounted version: the tiny model and its contract.json, with the governance section
    training writes (reason texts replaced by `texts`), or none (a version from before)."""
    target = tmp / "production"
    shutil.copytree(model_dir, target)
    governance = load_governance(REPO / "config" / "governance.yaml")
    doc: dict[str, Any] = CONTRACT.to_dict()
    if texts is not None:
        reasons = governance.reasons.model_copy(update={"texts": texts})
        doc = contract_record(CONTRACT, governance.model_copy(update={"reasons": reasons}))
    (tmp / "contract.json").write_text(json.dumps(doc))
    (tmp / "metadata.json").write_text('{"name": "credit-risk", "version": "9"}')
    return target


def _declined_records() -> list[dict[str, Any]]:
    return [record(seed) for seed in range(40)]


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without config/, and no ML_GOVERNANCE_CONFIG: as in the image."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(GOVERNANCE_ENV, raising=False)
    return work


def test_reasons_use_the_texts_logged_with_the_version_and_are_logged_as_codes(
    model_dir: Path, tmp_path: Path, no_config: Path
) -> None:
    # Given a version whose logged texts differ from today's config/governance.yaml
    texts = {name: f"logged text of {name}" for name in CONTRACT.names}
    for protected in ("SEX", "MARRIAGE", "AGE"):
        texts.pop(protected)
    served = _version_dir(tmp_path / "v9", model_dir, texts=texts)
    for client in make_client(ServeSettings(model_path=served)):
        sink = io.StringIO()
        client.app.state.prediction_log.stream = sink  # type: ignore[attr-defined]
        # When records are scored with reasons, then without
        answer = client.post("/predict?reasons=true", json={"records": _declined_records()})
        plain = client.post("/predict", json={"records": _declined_records()[:2]})
        assert answer.status_code == 200, answer.text
        assert plain.status_code == 200, plain.text
        with_reasons, without = (json.loads(x) for x in sink.getvalue().splitlines())
    # Then each decline's reasons carry the version's own texts, never a protected attribute
    predictions = answer.json()["predictions"]
    declined = [p for p in predictions if p["decision"] == "decline"]
    assert declined, "the tiny model declines some of these records"
    for p in declined:
        assert p["reasons"]
        assert all(r["text"] == texts[r["feature"]] for r in p["reasons"])
    # And the log line carries the codes (not the texts) record for record; the plain one none
    assert with_reasons["reasons"] == [
        [r["feature"] for r in p["reasons"]] if "reasons" in p else None for p in predictions
    ]
    assert "logged text" not in json.dumps(with_reasons)
    assert not {"SEX", "MARRIAGE", "AGE"} & {c for cs in with_reasons["reasons"] if cs for c in cs}
    assert "reasons" not in without


def test_a_version_logged_without_texts_is_a_clear_503(
    model_dir: Path, tmp_path: Path, no_config: Path
) -> None:
    served = _version_dir(tmp_path / "old", model_dir, texts=None)
    for client in make_client(ServeSettings(model_path=served, log_predictions=False)):
        answer = client.post("/predict?reasons=true", json={"records": _declined_records()})
        assert answer.status_code == 503
        text = answer.text
        assert "reasons_unavailable" in text
        assert "version 9 was registered without its reviewed reason texts" in text
        assert GOVERNANCE_ENV in text
        # And scoring without reasons is unaffected
        assert client.post("/predict", json={"records": _declined_records()}).status_code == 200
