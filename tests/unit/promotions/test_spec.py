"""promotions.yaml parsing: the contract, line numbers, and the repo's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import SpecError
from ml.promotions.gates import load_gates
from ml.promotions.spec import load_spec

REPO = Path(__file__).resolve().parents[3]


def test_repo_promotions_and_gates_parse() -> None:
    loaded = load_spec(REPO / "promotions.yaml")
    assert loaded.spec.models["credit-risk"].version == 1
    gates = load_gates(REPO / "config" / "gates.yaml").for_model("credit-risk")
    assert gates.floors == {"roc_auc": 0.75, "ks": 0.30}
    assert gates.required_tags == ("git_sha", "data_sha256")
    assert gates.max_regression == {"roc_auc": 0.005}


def test_several_models_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# c\nmodels:\n  a:\n    version: 2\n  b:\n    version: 7\n    note: x\n")
    loaded = load_spec(path)
    assert {n: e.version for n, e in loaded.spec.models.items()} == {"a": 2, "b": 7}
    assert loaded.lines == {"a": 3, "b": 5}
    with pytest.raises(Exception, match="frozen"):
        loaded.spec.models["a"].version = 3  # type: ignore[misc]


def test_error_points_at_the_line_of_the_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  a:\n    version: 1\n  b:\n    version: 0\n")
    with pytest.raises(SpecError, match=rf"{path}:5: models\.b\.version.*hint"):
        load_spec(path)


def test_bad_gates_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("defaults:\n  flooors: {roc_auc: 1}\n")
    with pytest.raises(SpecError, match=rf"{path}:2: defaults\.flooors"):
        load_gates(path)
