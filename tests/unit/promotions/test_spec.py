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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:\n  a: &x\n    version: 1\n  b: *x\n", "anchors and aliases"),
        ("x: &a [1]\nmodels:\n  a:\n    version: 1\n", "anchors and aliases"),
        # the 488-byte alias bomb: refused before anything is expanded
        ("a: &a [x,x,x,x,x,x,x,x,x]\n"
         + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True))
         + "models: *i\n", "anchors and aliases"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
    ids=["alias", "anchor", "alias-bomb", "deep-nesting"],
)  # fmt: skip
def test_hostile_yaml_is_refused_quickly(tmp_path: Path, text: str, expected: str) -> None:
    import time

    path = tmp_path / "p.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(SpecError, match=expected) as info:
        load_spec(path)
    assert time.monotonic() - started < 2
    assert "\n" not in str(info.value)


def test_the_file_size_and_the_note_are_bounded_and_never_echoed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("models:\n  a:\n    version: 1\n    note: " + "x" * 10_000_000 + "\n")
    with pytest.raises(SpecError, match="over the 65536-byte limit") as info:
        load_spec(big)
    assert len(str(info.value)) < 300

    long_note = tmp_path / "note.yaml"
    long_note.write_text("models:\n  a:\n    version: 1\n    note: " + "y" * 600 + "\n")
    with pytest.raises(SpecError, match=r"p.yaml:4|note.yaml:4: models\.a\.note") as info:
        load_spec(long_note)
    assert "y" * 61 not in str(info.value)  # at most one short line of the input


def test_a_multi_line_bad_value_is_quoted_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text('models:\n  a:\n    version: "1\\n2\\n3"\n')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).count("\n") == 0
    assert "(got '1\\n2\\n3')" in str(info.value)


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "promotions.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_environments_pin_staging_and_production_apart(tmp_path: Path) -> None:
    from ml.promotions.spec import desired_version, desired_versions

    path = _spec(
        tmp_path,
        "models:\n  a:\n    environments: {staging: 5, production: 4}\n  b:\n    version: 2\n",
    )
    loaded = load_spec(path)
    assert desired_version(loaded, "a", "staging") == 5
    assert desired_version(loaded, "a", "production") == 4
    assert desired_versions(loaded, "production") == {"a": 4, "b": 2}
    assert desired_versions(loaded, "staging") == {"a": 5, "b": 2}  # `version:` means both
    assert desired_version(loaded, "missing", "staging") is None


def test_version_and_environments_together_name_the_line(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        "models:\n  a:\n    version: 2\n    environments: {staging: 2, production: 1}\n",
    )
    with pytest.raises(SpecError, match=rf"{path}:4: models\.a: `version` and `environments`"):
        load_spec(path)


def test_an_entry_without_a_version_says_both_forms(tmp_path: Path) -> None:
    path = _spec(tmp_path, "models:\n  a:\n    note: x\n")
    with pytest.raises(SpecError, match=r"Field required: `version: N`.*`environments:"):
        load_spec(path)


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("version: 010", 3),
        ("version: 0x2", 3),
        ("version: 3_0", 3),
        ("version: +3", 3),
        ("version: 0o7", 3),
        ("environments: {staging: 0x2, production: 1}", 3),
        ("environments:\n      staging: 1\n      production: 010", 5),
    ],
)
def test_versions_are_plain_decimal_integers_only(tmp_path: Path, value: str, line: int) -> None:
    path = _spec(tmp_path, f"models:\n  a:\n    {value}\n")
    with pytest.raises(SpecError, match=rf"{path}:{line}: .*not a plain decimal integer.*hint"):
        load_spec(path)


@pytest.mark.parametrize("value", ["yes", "on", "True", "y", '"true"'])
def test_rollback_is_true_or_false_only(tmp_path: Path, value: str) -> None:
    path = _spec(tmp_path, f"models:\n  a:\n    version: 1\n    rollback: {value}\n")
    with pytest.raises(SpecError, match=rf"{path}:4: .*rollback.*(true|hint)"):
        load_spec(path)


def test_true_false_and_plain_versions_are_accepted(tmp_path: Path) -> None:
    path = _spec(tmp_path, "models:\n  a:\n    version: 10\n    rollback: false\n")
    entry = load_spec(path).spec.models["a"]
    assert (entry.version, entry.rollback) == (10, False)


@pytest.mark.parametrize("directive", ["%YAML 1.1", "%YAML 1.2", "%TAG ! tag:example.com,2000:"])
def test_yaml_directives_are_refused(tmp_path: Path, directive: str) -> None:
    path = _spec(tmp_path, f"{directive}\n---\nmodels:\n  a:\n    version: 010\n")
    with pytest.raises(SpecError, match=rf"{path}:1: YAML directive .* not allowed.*hint"):
        load_spec(path)


def test_a_rollback_edit_pins_production_only_in_the_environments_form(tmp_path: Path) -> None:
    from ml.promotions.spec import edit_entry

    path = _spec(
        tmp_path,
        "# kept\nmodels:\n  a:\n    environments: {staging: 5, production: 4}  # pins\n",
    )
    loaded = edit_entry(path, "a", version=3, note="back", rollback=True, env="production")
    entry = loaded.spec.models["a"]
    assert (entry.version_in("staging"), entry.version_in("production")) == (5, 3)
    assert entry.rollback is True
    text = path.read_text()
    assert "# kept" in text
    assert "# pins" in text
