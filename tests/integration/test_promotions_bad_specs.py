"""Every way promotions.yaml can be wrong exits non-zero through the real CLI, names the problem
with file:line, and leaves the registry exactly as it was (aliases, stages, tags)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.cli import app
from tests.fixtures.models import GATES, GOOD_METRICS, register_tiny, snapshot

NAME = "credit-risk"
GOOD = "credit-risk-b"  # a model whose entry is fine: a bad neighbour must stop its apply too
MODELS = [NAME, GOOD, "no-such-model"]

CASES: list[tuple[str, str, str]] = [
    ("yaml-syntax", "models:\n  credit-risk:\n    version: [1\n", "YAML syntax error"),
    ("tab-indent", "models:\n\tcredit-risk:\n    version: 1\n", "YAML syntax error"),
    (
        "duplicate-version",
        "models:\n  credit-risk:\n    version: 1\n    version: 2\n",
        "duplicate key",
    ),
    (
        "duplicate-model",
        "models:\n  credit-risk:\n    version: 1\n  credit-risk:\n    version: 1\n",
        "duplicate key",
    ),
    ("duplicate-top", "models: {}\nmodels:\n  credit-risk:\n    version: 1\n", "duplicate key"),
    ("unknown-top-key", "model:\n  credit-risk:\n    version: 1\n", "Extra inputs"),
    ("unknown-model-key", "models:\n  credit-risk:\n    version: 1\n    stage: x\n", "Extra"),
    ("typo-version", "models:\n  credit-risk:\n    versoin: 1\n", "Field required"),
    ("version-zero", "models:\n  credit-risk:\n    version: 0\n", "greater than 0"),
    ("version-negative", "models:\n  credit-risk:\n    version: -1\n", "greater than 0"),
    ("version-string", 'models:\n  credit-risk:\n    version: "3"\n', "valid integer"),
    ("version-float", "models:\n  credit-risk:\n    version: 3.5\n", "valid integer"),
    ("version-bool", "models:\n  credit-risk:\n    version: true\n", "valid integer"),
    ("version-null", "models:\n  credit-risk:\n    version:\n", "valid integer"),
    ("version-list", "models:\n  credit-risk:\n    version: [1]\n", "valid integer"),
    ("version-missing", "models:\n  credit-risk:\n    note: hi\n", "Field required"),
    ("note-not-string", "models:\n  credit-risk:\n    version: 1\n    note: 5\n", "valid string"),
    ("rollback-not-bool", "models:\n  credit-risk:\n    version: 1\n    rollback: yes\n", "bool"),
    ("empty-file", "", "expected a mapping"),
    ("models-empty", "models: {}\n", "at least 1"),
    ("models-list", "models:\n  - credit-risk\n", "valid dictionary"),
    ("bad-name", "models:\n  credit risk!:\n    version: 1\n", "bad model name"),
    ("unknown-model", "models:\n  no-such-model:\n    version: 1\n", "no-such-model"),
    ("nonexistent-version", "models:\n  credit-risk:\n    version: 99\n", "v99"),
    ("fails-floor-gate", "models:\n  credit-risk:\n    version: 2\n", "roc_auc"),
    ("fails-tag-gate", "models:\n  credit-risk:\n    version: 3\n", "git_sha"),
    (
        "rollback-marker-abuse",
        "models:\n  credit-risk:\n    version: 1\n    rollback: true\n",
        "remove `rollback: true`",
    ),
    (
        "good-then-failing-gate",
        f"models:\n  {GOOD}:\n    version: 1\n  credit-risk:\n    version: 2\n",
        "roc_auc",
    ),
    (
        "good-then-unknown-model",
        f"models:\n  {GOOD}:\n    version: 1\n  no-such-model:\n    version: 1\n",
        "no-such-model",
    ),
]


@pytest.fixture(scope="module")
def sqlite_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite registry: v1 good, v2 below the roc_auc floor, v3 without required tags."""
    base = tmp_path_factory.mktemp("bad-specs")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    art = base / "artifacts"
    register_tiny(uri, NAME, artifact_root=art)
    register_tiny(uri, NAME, metrics={**GOOD_METRICS, "roc_auc": 0.6}, artifact_root=art)
    register_tiny(uri, NAME, tags={"model_type": "logreg"}, artifact_root=art)
    register_tiny(uri, GOOD, artifact_root=art)
    return uri


@pytest.mark.parametrize(("case", "text", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("verb", ["validate", "apply"])
def test_bad_spec_exits_nonzero_and_leaves_registry_unchanged(
    sqlite_registry: str, tmp_path: Path, case: str, text: str, expected: str, verb: str
) -> None:
    # Given a bad promotions.yaml and a registry snapshot
    spec = tmp_path / "promotions.yaml"
    spec.write_text(text)
    before = snapshot(sqlite_registry, MODELS)
    args = ["promote", verb, "--file", str(spec), "--gates", str(GATES)]
    if verb == "apply":
        args += ["--env", "staging", "--workers", "4"]

    # When the real CLI runs it
    result = CliRunner().invoke(app, args, env={"MLFLOW_TRACKING_URI": sqlite_registry})

    # Then it fails, names the problem and the file:line, and wrote nothing
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    flat = " ".join(output.split())
    assert result.exit_code != 0, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert expected in flat, output
    assert re.search(re.escape(str(spec)) + r":\d+", flat), output
    assert snapshot(sqlite_registry, MODELS) == before


@pytest.mark.parametrize("verb", ["validate", "apply"])
def test_a_flavor_the_serve_image_cannot_load_is_refused(
    sqlite_registry: str, tmp_path: Path, verb: str
) -> None:
    # Given the repository's flavor gate (servable_flavors: [xgboost]) and a scikit-learn version
    gates = tmp_path / "gates.yaml"
    gates.write_text("defaults:\n  servable_flavors: [xgboost]\n")
    spec = tmp_path / "promotions.yaml"
    spec.write_text(f"models:\n  {GOOD}:\n    version: 1\n")
    before = snapshot(sqlite_registry, MODELS)
    args = ["promote", verb, "--file", str(spec), "--gates", str(gates)]
    if verb == "apply":
        args += ["--env", "staging"]

    # When the real CLI runs it
    result = CliRunner().invoke(app, args, env={"MLFLOW_TRACKING_URI": sqlite_registry})

    # Then it is refused by name, with the flavors it has, and nothing moved
    flat = " ".join(result.output.split())
    assert result.exit_code != 0, result.output
    assert "flavor" in flat, result.output
    assert "sklearn" in flat, result.output
    assert snapshot(sqlite_registry, MODELS) == before
