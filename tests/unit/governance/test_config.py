"""config/governance.yaml: the repository's file, and each way a file can be wrong (file:line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.errors import SpecError
from ml.features import FEATURES
from ml.governance.config import band_labels, load_governance

REPO = Path(__file__).resolve().parents[3]
GOOD = """\
version: 1
protected:
  SEX:
    input: false
    reference: 1
  AGE:
    input: true
    reason: reviewed
    bands: [25, 35]
    reference: "25-34"
reasons:
  top: 2
  texts:
    PAY_0: late
"""


def test_the_repository_file_keeps_sex_and_marriage_out_and_texts_every_other_input() -> None:
    governance = load_governance(REPO / "config" / "governance.yaml")
    assert governance.excluded == ("SEX", "MARRIAGE")
    inputs = governance.model_inputs(FEATURES)
    assert [n for n in ("SEX", "MARRIAGE", "AGE") if n in inputs] == ["AGE"]
    assert governance.missing_texts(inputs) == []
    assert governance.reasons.top == 4
    assert governance.where("protected", "SEX", "input").endswith("governance.yaml:13")


def test_lines_are_named_for_a_key(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GOOD)
    governance = load_governance(path)
    assert governance.where("protected", "SEX", "input") == f"{path}:4"
    assert governance.where("protected", "AGE") == f"{path}:6"


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("    input: false\n    reference: 1", "    input: true\n    reference: 1"), 3, "reason"),
        (("    reference: 1", "    reference: 1\n    colour: red"), 6, "Extra inputs"),
        (('reference: "25-34"', 'reference: "30-40"'), 6, "not a band"),
        (("PAY_0: late", "PAY_0: late\n    SEX: male"), 1, "never a reason"),
        (("  top: 2", "  top: 0"), 12, "greater than or equal to 1"),
        (("version: 1", "version: 2"), 1, "less than or equal to 1"),
    ],
)
def test_a_bad_file_names_its_line(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(SpecError, match=rf"{path}:{line}: .*{message}"):
        load_governance(path)


def test_a_duplicate_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GOOD.replace("  SEX:\n", "  SEX:\n    input: false\n", 1))
    with pytest.raises(SpecError, match=rf"{path}:5: duplicate key"):
        load_governance(path)


def test_age_bands() -> None:
    assert band_labels([25, 35, 45, 60]) == ["<25", "25-34", "35-44", "45-59", "60+"]
    governance = load_governance(REPO / "config" / "governance.yaml")
    groups = governance.protected["AGE"].groups(np.array([21, 25, 34, 35, 59, 60, 79]))
    assert groups.tolist() == ["<25", "25-34", "25-34", "35-44", "45-59", "60+", "60+"]
    assert governance.protected["SEX"].groups(np.array([1.0, 2.0])).tolist() == ["1", "2"]
