"""The loadable and canary gates through the real CLI against a real `mlflow server`.

Versions are trained for real by `mlops train` (XGBoost, 40 trees, on a 10,000-row sample of the
data, so each trains in seconds): a production version, the same model re-registered, one
trained on shifted labels, one on a shifted feature, and one whose booster file is then deleted
from the server's artefact store. The gates file is the repository's own (config/gates.yaml)
without the per-model metric floors, so the canary bounds tested are the reviewed ones.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import GateError
from ml.registry import Registry
from tests.fixtures.models import REPO_GATES, snapshot, write_spec
from tests.fixtures.prediction_logs import as_records, prediction_lines
from tests.fixtures.services import MlflowServer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
SMALL = '{"xgboost": {"n_estimators": 40, "learning_rate": 0.2}}'


@dataclass
class World:
    """One registered model on the session's server and what the tests need to drive it."""

    server: MlflowServer
    name: str
    env: dict[str, str]
    tmp: Path
    versions: dict[str, int]

    def cli(self, *args: str, **extra_env: str) -> tuple[int, str]:
        """Run `mlops ARGS` in-process; (exit code, output on one line per line)."""
        result = CliRunner().invoke(app, list(args), env={**self.env, **extra_env})
        return result.exit_code, result.output

    def gates(self, file: str = "gates.yaml", **models: Any) -> Path:
        """The repository's gates file with its per-model sections replaced by `models`."""
        repo = yaml.safe_load(REPO_GATES.read_text())
        path = self.tmp / file
        path.write_text(yaml.safe_dump({"defaults": repo["defaults"], "models": models}))
        return path


def _csv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _trained(world: World, *args: str) -> int:
    code, out = world.cli("train", "--model", "xgboost", "--params", SMALL, *args)
    assert code == 0, out
    versions = Registry(world.server.uri).versions(world.name)
    return versions[-1].version


@pytest.fixture(scope="module")
def world(mlflow_sqlite_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    """Production v1, and candidates: identical, shifted labels, shifted PAY_0, broken booster."""
    tmp = tmp_path_factory.mktemp("gates")
    sample = pd.read_csv(DATA).sample(n=10_000, random_state=0).sort_index()
    sha = _csv(tmp / "sample.csv", sample)
    rng = np.random.default_rng(11)
    labels = sample.copy()
    # A label definition change: 15 % of the good payers now count as defaults.
    labels.loc[(labels["target"] == 0) & (rng.random(len(labels)) < 0.15), "target"] = 1
    labels_sha = _csv(tmp / "labels.csv", labels)
    features = sample.copy()
    # A feature pipeline change: repayment status read two months early (still in contract).
    features["PAY_0"] = np.maximum(features["PAY_0"] - 2, -2)
    features_sha = _csv(tmp / "features.csv", features)

    name = f"gates-{uuid.uuid4().hex[:8]}"
    env = {
        "MLFLOW_TRACKING_URI": mlflow_sqlite_server.uri,
        "ML_MODEL_NAME": name,
        "ML_EXPERIMENT": name,
        "ML_HOME": str(tmp / "home"),
        # The canary's holdout is the reviewed one built from these (as `mlops train` builds it).
        "ML_DATA_SOURCE": str(tmp / "sample.csv"),
        "ML_DATA_SHA256": sha,
        "ML_TRAIN_CONFIG": str(ROOT / "config" / "train.yaml"),
        "COLUMNS": "250",
    }
    w = World(mlflow_sqlite_server, name, env, tmp, {})
    w.versions["production"] = _trained(w)
    registry = Registry(mlflow_sqlite_server.uri)
    first = registry.get_version(name, w.versions["production"])
    assert first is not None
    assert first.run_id
    # The same logged model registered again: an identical candidate.
    w.versions["identical"] = registry.register(
        name, first.source, first.run_id, dict(first.tags), "the same model again"
    ).version
    w.versions["labels"] = _trained(
        w, "--data", str(tmp / "labels.csv"), "--data-sha256", labels_sha
    )
    w.versions["features"] = _trained(
        w, "--data", str(tmp / "features.csv"), "--data-sha256", features_sha
    )
    w.versions["broken"] = _trained(w)
    # Production is v1, applied through the CLI with the gates (the canary has nothing to
    # compare with yet, and says so).
    spec = write_spec(tmp / "promotions.yaml", {name: w.versions["production"]})
    gates = w.gates()
    code, out = w.cli("promote", "validate", "--file", str(spec), "--gates", str(gates))
    assert code == 0, out
    assert "canary: skipped: no production version to compare with" in out
    for target in ("staging", "production"):
        code, out = w.cli(
            "promote", "apply", "--env", target, "--file", str(spec), "--gates", str(gates)
        )
        assert code == 0, out
    return w


def _validate(world: World, version: int, gates: Path | None = None, **spec: object) -> tuple:
    path = write_spec(world.tmp / f"promotions-{version}.yaml", {world.name: version}, **spec)
    gates_file = gates or world.gates()
    code, out = world.cli("promote", "validate", "--file", str(path), "--gates", str(gates_file))
    return code, out, path, gates_file


def test_an_identical_candidate_passes_the_canary(world: World) -> None:
    # Given the production model registered again as a new version
    version = world.versions["identical"]

    # When validate runs the gates
    code, out, spec, gates = _validate(world, version)

    # Then the canary passes with its figures: nothing differs
    assert code == 0, out
    assert "canary:score_psi: score PSI 0.0000 (max 0.1)" in out
    assert f"on the holdout of {world.env['ML_DATA_SOURCE']}" in out
    assert "2,000 rows" in out  # 20 % of the 10,000-row sample
    assert "delta +0.00 pp (max ±1.00 pp)" in out
    assert "0.00% of decisions flip (0 of 2,000; max 2.00%)" in out
    assert "PASS   " + world.name + " loadable: loads from the artefact store" in out

    # And the PR's plan comment carries the verdicts and the canary's figures
    code, md = world.cli(
        "promote", "plan", "--file", str(spec), "--gates", str(gates), "--format", "markdown"
    )
    assert code == 0, md
    assert f"#### {world.name} v{version} (staging, production): gates passed" in md
    assert "| rows | approval v1 | approval v2 | delta | flips | score PSI |" in md
    row = next(line for line in md.splitlines() if line.startswith("| 2,000 |"))
    assert "+0.00 pp (max ±1.00)" in row
    assert "0.00% = 0 (max 2.00%)" in row
    assert "0.0000 (max 0.1)" in row


def test_the_canary_replays_logged_production_inputs(world: World) -> None:
    # Given 1,500 records as serve logged them, and the canary told to replay them
    frame = pd.read_csv(DATA).sample(n=1_500, random_state=5)
    log = world.tmp / "logs" / "api.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(prediction_lines(as_records(frame), [0.2] * len(frame), version="1"))
    repo = yaml.safe_load(REPO_GATES.read_text())
    canary = {**repo["defaults"]["canary"], "replay": "logs", "logs": str(log.parent)}
    gates = world.gates("gates-logs.yaml", **{world.name: {"canary": canary}})

    # When the identical candidate is validated
    code, out, _, _ = _validate(world, world.versions["identical"], gates)

    # Then the figures are on the logged records
    assert code == 0, out
    assert f"1,500 of 1,500 logged records (all) in {log.parent} (served by v1: 1,500)" in out
    assert "0.00% of decisions flip (0 of 1,500; max 2.00%)" in out


@pytest.mark.parametrize("kind", ["labels", "features"])
def test_a_candidate_trained_on_shifted_data_fails_the_canary_with_figures(
    world: World, kind: str
) -> None:
    # Given a candidate trained on shifted labels or a shifted feature
    version = world.versions[kind]

    # When validate runs the gates
    code, out, spec, gates = _validate(world, version)

    # Then it exits 5, and the canary names its figures against production's
    assert code == GateError.exit_code, out
    assert f"FAIL   {world.name} canary:" in out
    assert "score PSI" in out
    assert "approval rate at PD < 0.5 (gates file)" in out
    assert "of decisions flip" in out
    assert "2,000 rows" in out
    failed = [line for line in out.splitlines() if line.startswith("FAIL") and "canary:" in line]
    assert failed, out

    # And apply refuses it: nothing moves
    before = snapshot(world.server.uri, [world.name])
    code, out = world.cli(
        "promote", "apply", "--env", "staging", "--file", str(spec), "--gates", str(gates)
    )
    assert code == GateError.exit_code, out
    assert "gates failed: canary:" in out
    assert snapshot(world.server.uri, [world.name]) == before


def test_a_version_whose_booster_is_gone_is_refused_naming_the_load_failure(
    world: World,
) -> None:
    # Given a version whose model.ubj was deleted from the server's artefact store
    version = world.versions["broken"]
    registry = Registry(world.server.uri)
    uri = registry.client.get_model_version_download_uri(world.name, str(version))
    assert uri.startswith("mlflow-artifacts:/"), uri
    booster = world.server.log.parent / "artifacts" / uri.removeprefix("mlflow-artifacts:/")
    booster = booster / "model.ubj"
    assert booster.is_file(), booster
    booster.unlink()

    # When validate runs the gates
    code, out, spec, gates = _validate(world, version)

    # Then it exits 5 naming the load failure, and the canary says it did not run
    assert code == GateError.exit_code, out
    loadable = next(line for line in out.splitlines() if " loadable: " in line)
    assert loadable.startswith(f"FAIL   {world.name} loadable: "), out
    assert (
        f"{world.name}/{version} (version {version}) cannot be loaded: the booster file "
        "model.ubj is missing from the artifacts" in loadable
    ), out
    assert f"not run: v{version} does not load (see loadable)" in out

    # And apply moves nothing
    before = snapshot(world.server.uri, [world.name])
    code, out = world.cli(
        "promote", "apply", "--env", "staging", "--file", str(spec), "--gates", str(gates)
    )
    assert code == GateError.exit_code, out
    assert "model.ubj is missing" in out
    assert snapshot(world.server.uri, [world.name]) == before


def test_a_rollback_shows_the_canary_waived_with_its_figures(world: World) -> None:
    # Given a second model whose production is the shifted-feature model (promoted with the
    # canary turned off for it, by a per-model override) and whose v1 is the good model
    registry = Registry(world.server.uri)
    name = f"{world.name}-rb"
    for key in ("production", "features"):
        info = registry.get_version(world.name, world.versions[key])
        assert info is not None
        assert info.run_id
        registry.register(name, info.source, info.run_id, dict(info.tags), key)
    off = world.gates("gates-off.yaml", **{name: {"canary": {"enabled": False}}})
    for version in (1, 2):
        spec = write_spec(world.tmp / f"rb-{version}.yaml", {name: version})
        for target in ("staging", "production"):
            code, out = world.cli(
                "promote", "apply", "--env", target, "--file", str(spec), "--gates", str(off)
            )
            assert code == 0, out

    # When the rollback to v1 is validated and planned with the canary on
    spec = write_spec(world.tmp / "rb-back.yaml", {name: 1}, rollback="true")
    gates = world.gates()
    code, out = world.cli("promote", "validate", "--file", str(spec), "--gates", str(gates))

    # Then it passes, but the canary is shown as WAIVED with its figures, not silently skipped
    assert code == 0, out
    waived = [line for line in out.splitlines() if line.startswith("WAIVED") and "canary:" in line]
    assert waived, out
    assert any("score PSI" in line and "[waived: rollback]" in line for line in waived), out
    assert "waived by rollback" in out
    code, md = world.cli(
        "promote", "plan", "--file", str(spec), "--gates", str(gates), "--format", "markdown"
    )
    assert code == 0, md
    assert "**ROLLBACK** (canary, regression gates waived)" in md
    assert "| canary:score_psi | **WAIVED** |" in md
    assert "| rows | approval v2 | approval v1 | delta | flips | score PSI |" in md
