"""Every config file is read one strict way: duplicate keys, anchors and bad values are refused
naming `file:line` and the key, a missing file names the fix, every problem is listed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ml.config_file import MAX_FILE_BYTES, load_yaml, plain, validate
from ml.errors import ConfigError, SpecError
from ml.monitoring.config import load_monitoring_config
from ml.platform.config import load_platform
from ml.train_config import load_train_config

ROOT = Path(__file__).resolve().parents[2]

LOADERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "train": (load_train_config, "train.yaml"),
    "monitoring": (load_monitoring_config, "monitoring.yaml"),
    "platform": (load_platform, "platform.yaml"),
}

# (loader, text replaced in the committed file, its replacement, the key the error names, the
# problem): the error must point at the line where the replacement's last line lands.
CASES = [
    ("train", "seed: 42\n", "seed: 42\nseed: 7\n", "seed", "duplicate key"),
    ("train", "  logreg:\n", "  logreg: &lr\n", "logreg", "anchors and aliases"),
    ("train", "test_size: 0.2\n", "test_size: 0.9\n", "test_size", "less than 0.5"),
    (
        "monitoring",
        "approval_threshold: 0.5\n",
        "approval_threshold: 0.5\napproval_threshold: 0.6\n",
        "approval_threshold",
        "duplicate key",
    ),
    ("monitoring", "drift:\n", "drift: &d\n", "drift", "anchors and aliases"),
    (
        "monitoring",
        "  max_drift_share: 0.2         #",
        "  max_drift_share: 2         #",
        "drift.max_drift_share",
        "less than or equal to 1",
    ),
    ("platform", "version: 1\n", "version: 1\nversion: 1\n", "version", "duplicate key"),
    ("platform", "teams:\n", "teams: &t\n", "teams", "anchors and aliases"),
    (
        "platform",
        "  required_approving_reviews: 1\n",
        "  required_approving_reviews: 0\n",
        "branch_protection.required_approving_reviews",
        "greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(
    ("loader", "old", "new", "key", "problem"),
    CASES,
    ids=[f"{c[0]}-{c[4].split()[0]}" for c in CASES],
)
def test_a_mistake_in_a_config_file_names_file_line_and_key(
    tmp_path: Path, loader: str, old: str, new: str, key: str, problem: str
) -> None:
    # Given the committed file with one mistake written into it
    load, name = LOADERS[loader]
    text = (ROOT / "config" / name).read_text(encoding="utf-8")
    assert text.count(old) >= 1
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text[: text.index(old)].count("\n") + new.rstrip("\n").count("\n") + 1

    # When it is loaded, then one line names the file, the line, the key, the problem and a fix
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert type(caught.value) is ConfigError  # exit code 2, as before
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert re.search(rf"\b{re.escape(key.split('.')[-1])}\b", message), message
    assert problem in message, message
    assert "(hint: " in message, message


@pytest.mark.parametrize(
    ("loader", "fix"),
    [
        ("train", "training config not found: .*nope.yaml .*ML_TRAIN_CONFIG"),
        ("monitoring", r"monitoring config not found: .*nope.yaml \(pass --config"),
        ("platform", r"nope.yaml: cannot read it .*pass --file"),
    ],
)
def test_a_missing_file_names_the_fix(tmp_path: Path, loader: str, fix: str) -> None:
    load, _ = LOADERS[loader]
    with pytest.raises(ConfigError, match=fix):
        load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("loader", ["train", "monitoring"])
def test_an_empty_file_means_every_default(tmp_path: Path, loader: str) -> None:
    load, name = LOADERS[loader]
    path = tmp_path / name
    path.write_text("# nothing set\n")
    config = load(path)
    assert config == type(config)()


def test_an_empty_platform_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match=rf"{path}:1: <root>: Input should be a valid dict"):
        load_platform(path)


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: int = Field(default=1, ge=0)
    high: int = Field(default=2, le=10)
    name: str = "x"


def test_every_problem_is_listed_on_its_own_line_with_the_callers_hint(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text("# limits\nlow: -1\nhigh: 11\nnaem: y\n")
    with pytest.raises(SpecError) as caught:
        validate(
            _Limits,
            load_yaml(path, missing="unused"),
            path,
            hint=lambda err: f"fix {err['loc'][0]}",
            error=SpecError,
        )
    assert str(caught.value).splitlines() == [
        f"{path}:2: low: Input should be greater than or equal to 0 (got -1) (hint: fix low)",
        f"{path}:3: high: Input should be less than or equal to 10 (got 11) (hint: fix high)",
        f"{path}:4: naem: Extra inputs are not permitted (got 'y') (hint: fix naem)",
    ]


def test_values_are_read_as_yaml_1_2_and_as_plain_python(tmp_path: Path) -> None:
    # `yes` is the word a reviewer reads, `010` is ten; hyperparameters passed on as they are
    # arrive as built-in floats and ints, not ruamel's subclasses
    path = tmp_path / "c.yaml"
    path.write_text("a: yes\nb: 010\nc: 0.01\nd: [1, 2.5]\ne: |\n  text\n")
    tree = plain(load_yaml(path, missing="unused"))
    assert tree == {"a": "yes", "b": 10, "c": 0.01, "d": [1, 2.5], "e": "text\n"}
    assert [type(v) for v in (tree["b"], tree["c"], *tree["d"], tree["e"])] == [
        int,
        float,
        int,
        float,
        str,
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("%YAML 1.1\n---\na: 1\n", r":1: YAML directive '%YAML' is not allowed"),
        ("a: [1\n", r":2: YAML syntax error"),
        ("a:\n  b: 1\n  b: 2\n", r":3: duplicate key"),
        ("a: 1\nb: *x\n", r":2: 'b: \*x': YAML anchors and aliases"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", r":1: YAML nested too deeply"),
    ],
    ids=["directive", "syntax", "duplicate", "alias", "nesting"],
)
def test_yaml_mistakes_name_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + message):
        load_yaml(path, missing="unused")


def test_an_oversized_or_binary_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(ConfigError, match=rf"{big}:1: file is \d+ bytes, over the"):
        load_yaml(big, missing="unused")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match=rf"{binary}:1: not UTF-8 text"):
        load_yaml(binary, missing="unused")


def test_every_committed_config_file_loads() -> None:
    from ml.governance.config import load_governance
    from ml.promotions.gates import load_gates
    from ml.promotions.spec import load_spec

    assert load_train_config(ROOT / "config" / "train.yaml").seed == 42
    assert load_monitoring_config(ROOT / "config" / "monitoring.yaml").approval_threshold == 0.5
    assert load_platform(ROOT / "config" / "platform.yaml").version == 1
    assert load_gates(ROOT / "config" / "gates.yaml").defaults is not None
    assert load_governance(ROOT / "config" / "governance.yaml").protected
    assert load_spec(ROOT / "promotions.yaml").spec.models
