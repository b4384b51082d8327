"""Credit-decision governance on the real data, a real MLflow store and real training.

Two versions, trained once for the module on the 30,000 rows (fewer trees than
config/train.yaml, same split): v1 with the repository's config/governance.yaml (SEX and
MARRIAGE kept out of the inputs), v2 built to disadvantage women: labels flipped for SEX=2 and
SEX allowed as an input by its own governance file. The gates run through `mlops promote
validate` with the repository's gates file; reason codes through /predict and `mlops predict`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from conftest_serve import make_client, serve_subprocess
from typer.testing import CliRunner

from ml.batch import ModelRef, load_version
from ml.cli import app
from ml.contract import CONTRACT_FILE
from ml.features import FEATURES
from ml.governance.reasons import GOVERNANCE_ENV, ReasonCoder
from ml.governance.training import GOVERNANCE_KEY, PROTECTED_TAG, used_features
from ml.holdout import load_dataset
from ml.registry import Registry
from ml.settings import DEFAULT_DATA_SHA256, MLSettings
from ml.train import TrainResult, train
from ml.train_config import load_train_config
from serve.settings import ServeSettings
from tests.fixtures.models import write_spec

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "uci_credit_card.csv.gz"
GOVERNANCE = ROOT / "config" / "governance.yaml"
GATES = ROOT / "config" / "gates.yaml"
NAME = "credit-risk"


@dataclass(frozen=True)
class World:
    uri: str
    tmp: Path
    env: dict[str, str]
    fair: int  # v1: the repository's governance
    biased: int  # v2: labels flipped for SEX=2, SEX an input
    fair_auc: float


def _line_of_sex_input() -> int:
    """The line of `input:` under `SEX:` in config/governance.yaml, read as text."""
    lines = GOVERNANCE.read_text().splitlines()
    start = lines.index("  SEX:")
    return next(i for i in range(start, len(lines)) if "input:" in lines[i]) + 1


def _train_both(tmp: Path, common: dict[str, Path]) -> tuple[TrainResult, TrainResult]:
    """v1 with the repository's governance; v2 on labels flipped for women, SEX an input."""
    fair = train(MLSettings(**common, governance_config=GOVERNANCE), ["xgboost"])
    frame = pd.read_csv(DATA)
    women = frame["SEX"] == 2
    frame.loc[women, "target"] = 1 - frame.loc[women, "target"]
    biased_csv = tmp / "biased.csv"
    frame.to_csv(biased_csv, index=False)
    allowing = yaml.safe_load(GOVERNANCE.read_text())
    allowing["protected"]["SEX"].update(input=True, reason="a test of the gates")
    (tmp / "allowing.yaml").write_text(yaml.safe_dump(allowing))
    biased = train(
        MLSettings(**common, governance_config=tmp / "allowing.yaml"),
        ["xgboost"],
        data_source=str(biased_csv),
        data_sha256=hashlib.sha256(biased_csv.read_bytes()).hexdigest(),
    )
    return fair, biased


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("governance")
    # The embedded store under `home` (MLSettings' default): a SQLite file in tmp_path.
    uri = f"sqlite:///{((tmp / 'home').resolve() / 'mlflow.db').as_posix()}"
    config = yaml.safe_load((ROOT / "config" / "train.yaml").read_text())
    config["candidates"]["xgboost"].update(n_estimators=150, learning_rate=0.06)
    (tmp / "train.yaml").write_text(yaml.safe_dump(config))
    common = {"home": tmp / "home", "train_config": tmp / "train.yaml"}

    # Another module may have exported a tracking URI (mlflow.set_tracking_uri does): this
    # module's store is the one under `home`.
    env_guard = pytest.MonkeyPatch()
    for name in ("MLFLOW_TRACKING_URI", "ML_TRACKING_URI"):
        env_guard.delenv(name, raising=False)
    try:
        fair, biased = _train_both(tmp, common)
    finally:
        env_guard.undo()

    env = {
        "MLFLOW_TRACKING_URI": uri,
        "ML_DATA_SOURCE": str(DATA),
        "ML_DATA_SHA256": DEFAULT_DATA_SHA256,
        "ML_TRAIN_CONFIG": str(tmp / "train.yaml"),
        GOVERNANCE_ENV: str(GOVERNANCE),
        "COLUMNS": "400",
    }
    return World(
        uri,
        tmp,
        env,
        fair.version.version,
        biased.version.version,
        fair.champion.evaluation.roc_auc,
    )


def _validate(world: World, version: int) -> tuple[int, str]:
    spec = write_spec(world.tmp / f"promotions-{version}.yaml", {NAME: version})
    result = CliRunner().invoke(
        app, ["promote", "validate", "--file", str(spec), "--gates", str(GATES)], env=world.env
    )
    return result.exit_code, " ".join(result.output.split())


def _booster(world: World, version: int) -> xgb.Booster:
    model = load_version(Registry(world.uri), ModelRef(NAME, version=version), world.tmp / "dl")
    booster = model.predictor.booster  # type: ignore[attr-defined]
    assert isinstance(booster, xgb.Booster)
    return booster


def _holdout(world: World, rows: int) -> pd.DataFrame:
    holdout, _ = load_dataset(
        str(DATA), DEFAULT_DATA_SHA256, load_train_config(world.tmp / "train.yaml")
    )
    return holdout.x_test.head(rows)


def test_default_training_keeps_protected_columns_out_and_meets_the_floor(world: World) -> None:
    # Given the version trained with the repository's governance file
    booster = _booster(world, world.fair)
    registry = Registry(world.uri)
    info = registry.get_version(NAME, world.fair)
    assert info is not None
    assert info.run_id
    # Then no tree splits on SEX or MARRIAGE, though the signature still carries them
    used = used_features(booster)
    assert not used & {"SEX", "MARRIAGE"}
    assert {"PAY_0", "AGE"} <= used
    assert set(booster.feature_names or ()) == set(FEATURES)
    # And the version's logged contract and tags record the governance it was trained under
    contract = json.loads(
        registry.download_run_file(info.run_id, CONTRACT_FILE, world.tmp / "c").read_text()
    )
    protected = contract[GOVERNANCE_KEY]["protected"]
    assert {n: p["input"] for n, p in protected.items()} == {
        "SEX": False,
        "MARRIAGE": False,
        "AGE": True,
    }
    assert registry.run_tags(info.run_id)[PROTECTED_TAG] == '["AGE"]'
    # And it still meets the reviewed ROC-AUC floor
    floor = yaml.safe_load(GATES.read_text())["models"][NAME]["floors"]["roc_auc"]
    assert world.fair_auc >= floor


def test_the_champion_passes_the_protected_input_and_fairness_gates(world: World) -> None:
    code, out = _validate(world, world.fair)
    assert code == 0, out
    assert f"PASS {NAME} protected-inputs:SEX: v{world.fair} carries SEX for monitoring" in out
    for attribute in ("SEX", "MARRIAGE", "AGE"):
        assert f"PASS {NAME} fairness:{attribute}:" in out
    # The figures show, group by group, against the reference group
    assert "SEX=2 vs 1: approval" in out
    assert "AGE=<25 vs 35-44: approval" in out


def test_a_version_trained_on_sex_to_disadvantage_women_is_refused_with_figures(
    world: World,
) -> None:
    code, out = _validate(world, world.biased)
    assert code != 0
    # The protected input is refused, naming the line of the governance file that refuses it
    where = f"config/governance.yaml:{_line_of_sex_input()}"
    assert f"FAIL {NAME} protected-inputs:SEX:" in out
    assert f"v{world.biased} was trained on SEX (its trees split on it), but" in out
    assert where in out
    assert "protected.SEX.input: false" in out
    # And the fairness gate fails on SEX with its figures (four-fifths rule)
    assert f"FAIL {NAME} fairness:SEX:" in out
    assert "SEX=2: approval ratio" in out
    assert "< 0.8" in out


def test_reason_codes_on_1000_holdout_rows(world: World, tmp_path: Path) -> None:
    # Given 1,000 holdout rows and the champion's booster
    frame = _holdout(world, 1000)
    matrix = frame[FEATURES].to_numpy(np.float32)
    booster = _booster(world, world.fair)
    from ml.governance.config import load_governance

    governance = load_governance(GOVERNANCE)
    coder = ReasonCoder(booster, FEATURES, governance)
    margin = booster.predict(xgb.DMatrix(matrix), output_margin=True, validate_features=False)
    probability = booster.predict(xgb.DMatrix(matrix), validate_features=False)
    declined = probability >= governance.reasons.decline_threshold
    assert 50 < declined.sum() < 500

    # Then the contributions sum to the margin, with either method
    contributions = coder.contributions(matrix)
    assert np.abs(contributions.sum(axis=1) - margin).max() < 1e-4
    shap = governance.model_copy(
        update={"reasons": governance.reasons.model_copy(update={"method": "shap"})}
    )
    exact = ReasonCoder(booster, FEATURES, shap).contributions(matrix[:50])
    assert np.abs(exact.sum(axis=1) - margin[:50]).max() < 1e-4
    # And the protected columns the model may not use contribute nothing
    assert not contributions[:, [FEATURES.index("SEX"), FEATURES.index("MARRIAGE")]].any()

    # And each decline's reasons are its largest positive contributions, never protected
    reasons = coder.explain(matrix, declined)
    for i in range(len(matrix)):
        if not declined[i]:
            assert reasons[i] is None
            continue
        allowed = {
            name: c
            for name, c in zip(FEATURES, contributions[i, :-1], strict=True)
            if c > 0 and name not in governance.protected
        }
        expected = sorted(allowed, key=lambda n: -allowed[n])[:4]
        got = reasons[i]
        assert got is not None
        assert [r.feature for r in got] == expected
        assert {r.feature for r in got}.isdisjoint({"SEX", "MARRIAGE", "AGE"})
        assert all(r.text == governance.reasons.texts[r.feature] for r in got)

    # When the same rows go through /predict?reasons=true and `mlops predict --reasons`
    model_dir = Registry(world.uri).download_version(NAME, world.fair, tmp_path / "model")
    info = Registry(world.uri).get_version(NAME, world.fair)
    assert info is not None
    assert info.run_id
    Registry(world.uri).download_run_file(info.run_id, CONTRACT_FILE, model_dir)
    served: list[list[str] | None] = []
    mp = pytest.MonkeyPatch()
    mp.setenv(GOVERNANCE_ENV, str(GOVERNANCE))
    try:
        for client in make_client(ServeSettings(model_path=model_dir, log_predictions=False)):
            records = json.loads(frame[FEATURES].to_json(orient="records"))
            for start in range(0, len(records), 250):
                answer = client.post(
                    "/predict?reasons=true", json={"records": records[start : start + 250]}
                )
                assert answer.status_code == 200, answer.text
                for p in answer.json()["predictions"]:
                    served.append([r["feature"] for r in p["reasons"]] if "reasons" in p else None)
            # One record a request (the numpy walk, not a DMatrix): the same reasons
            singles = [i for i in range(len(records)) if declined[i]][:25]
            for i in singles:
                answer = client.post("/predict?reasons=true", json={"records": [records[i]]})
                (p,) = answer.json()["predictions"]
                assert [r["feature"] for r in p["reasons"]] == served[i], i
            plain = client.post("/predict", json={"records": records[:5]}).json()
            assert all("reasons" not in p for p in plain["predictions"])
            bad = client.post("/predict?reasons=perhaps", json={"records": records[:1]})
            assert bad.status_code == 422
            assert "reasons" in bad.text
    finally:
        mp.undo()
    frame.assign(ID=np.arange(len(frame))).to_parquet(tmp_path / "in.parquet", index=False)
    result = CliRunner().invoke(
        app,
        ["predict", "--model", f"{NAME}/{world.fair}", "--input", str(tmp_path / "in.parquet"),
         "--output", str(tmp_path / "out.parquet"), "--reasons"],
        env=world.env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(tmp_path / "out.parquet").sort_values("row")
    batch: list[list[str] | None] = []
    for _, row in out.iterrows():
        names = [row[f"reason_{k}"] for k in range(1, 5) if row[f"reason_{k}"] is not None]
        batch.append(names if row["probability"] >= 0.5 else None)
        if row["probability"] < 0.5:
            assert row["reason_1"] is None
        else:
            assert row["reason_1_text"] == governance.reasons.texts[row["reason_1"]]

    # Then both give the reasons computed above, record for record
    expected_names = [None if r is None else [x.feature for x in r] for r in reasons]
    assert served == expected_names
    assert batch == expected_names


def test_the_canary_replay_judges_fairness_with_production_beside(world: World) -> None:
    # Given the fair version in production
    registry = Registry(world.uri)
    registry.client.set_registered_model_alias(NAME, "production", str(world.fair))
    try:
        # When the version built to disadvantage women is validated against it
        code, out = _validate(world, world.biased)
    finally:
        registry.client.delete_registered_model_alias(NAME, "production")
    # Then the canary replay's fairness fails on SEX with both versions' figures, judged on
    # the same rows the canary compares
    assert code != 0
    assert f"FAIL {NAME} canary-fairness:SEX:" in out
    fail = out.split(f"FAIL {NAME} canary-fairness:SEX:")[1]
    assert "SEX=2: approval ratio" in fail.split(" | ")[0]
    assert f"v{world.biased} on the canary replay (holdout of" in out
    assert f"production v{world.fair} ratio" in out
    assert f"{NAME} canary:score_psi:" in out
    # And the attributes it treats like production pass
    assert f"PASS {NAME} canary-fairness:MARRIAGE:" in out


def test_serve_without_a_config_directory_answers_reasons_with_the_versions_texts(
    world: World, tmp_path: Path
) -> None:
    # Given the champion mounted as the serve image mounts a version, and a working directory
    # without config/ (the image carries none), no governance file named anywhere
    registry = Registry(world.uri)
    model_dir = registry.download_version(NAME, world.fair, tmp_path / "model")
    info = registry.get_version(NAME, world.fair)
    assert info is not None
    assert info.run_id
    registry.download_run_file(info.run_id, CONTRACT_FILE, model_dir)
    work = tmp_path / "work"
    work.mkdir()
    assert not (work / "config").exists()
    env = {"SERVE_MODEL_PATH": str(model_dir), GOVERNANCE_ENV: "", "MLFLOW_TRACKING_URI": ""}
    records = json.loads(_holdout(world, 200)[FEATURES].to_json(orient="records"))
    from ml.governance.config import load_governance

    texts = load_governance(GOVERNANCE).reasons.texts
    # When it is asked for reasons
    with serve_subprocess(env, tmp_path / "serve.log", cwd=work) as (url, _):
        import httpx

        answer = httpx.post(f"{url}/predict?reasons=true", json={"records": records}, timeout=30)
    # Then every decline carries the reviewed texts logged with the version
    assert answer.status_code == 200, answer.text
    declined = [p for p in answer.json()["predictions"] if p["decision"] == "decline"]
    assert declined
    for p in declined:
        assert p["reasons"]
        assert all(r["text"] == texts[r["feature"]] for r in p["reasons"])


def test_the_release_report_names_every_figure(world: World, tmp_path: Path) -> None:
    # Given a release of the champion, applied to production
    from ml.deploy import release as releases

    registry = Registry(world.uri)
    rel = releases.build(
        "r-governance",
        "a" * 40,
        "registry.example/credit-risk-serve@sha256:" + "b" * 64,
        None,
        {NAME: world.fair},
    )
    releases.create(registry, NAME, rel)
    # and the production apply record `mlops promote apply` leaves on the version (approver, PR)
    from ml.promotions import records

    registry.client.set_model_version_tag(
        NAME,
        str(world.fair),
        records.record_tag("production", "a" * 40),
        records.apply_record(
            env="production", version=world.fair, previous=None, git_sha="a" * 40,
            pr="https://github.com/o/r/pull/7", actor="model-approver-alice",
            run_url="https://ci/run/1", time="2030-01-02T03:04:05Z", rollback=False,
            allow_skip_staging=False,
        ),
    )  # fmt: skip
    # When its model risk record is written
    out = tmp_path / "record.md"
    result = CliRunner().invoke(
        app,
        ["release", "report", "--release", rel.id, "--output", str(out), "--gates", str(GATES),
         "--governance", str(GOVERNANCE)],
        env=world.env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    # Then it names the data, the training config, the metrics, the gates and fairness with
    # figures, the protected attributes, the reason texts and the verification
    assert f"# Model risk record: release {rel.id}" in text
    assert f"| data sha256 | {DEFAULT_DATA_SHA256} |" in text
    assert "| n_estimators | 150 |" in text
    assert "| roc_auc | 0." in text
    assert "| floor:roc_auc | PASS |" in text
    assert "| protected-inputs:SEX | PASS |" in text
    assert "| SEX | 2 (vs 1) |" in text
    assert "| AGE | <25 (vs 35-44) |" in text
    assert "| SEX | no | 1 |" in text
    assert "| PAY_0 | Payment status of the most recent month (September) shows a delay |" in text
    assert (
        "| production | promotion applied | model-approver-alice | 2030-01-02T03:04:05Z | "
        "https://github.com/o/r/pull/7 |" in text
    )
