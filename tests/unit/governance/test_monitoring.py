"""`mlops monitor fairness` over prediction logs written by serve's own writer, the figures it
pushes, and the alert rule on them (real promtool)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.governance.config import load_governance
from ml.governance.fairness import FairnessBounds
from ml.governance.monitoring import approval_by_group, fairness_registry
from tests.fixtures.prediction_logs import as_records, prediction_lines

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "uci_credit_card.csv.gz"


def _logs(tmp_path: Path, women_decline: float) -> Path:
    """3,000 real applicants; men declined at 10 %, women at `women_decline`."""
    frame = pd.read_csv(DATA).head(3000)
    rng = np.random.default_rng(0)
    share = np.where(frame["SEX"] == 2, women_decline, 0.10)
    scores = np.where(rng.random(len(frame)) < share, 0.9, 0.1)
    path = tmp_path / "api.log"
    path.write_text(prediction_lines(as_records(frame), scores.tolist()))
    return path


def test_comparable_approval_rates_pass(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "fairness", "--logs", str(_logs(tmp_path, 0.10)),
              "--gates", str(REPO / "config" / "gates.yaml"),
              "--governance", str(REPO / "config" / "governance.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok"
    women = next(g for g in summary["groups"] if (g["attribute"], g["group"]) == ("SEX", "2"))
    assert women["rows"] > 1000
    assert women["approval_ratio"] > 0.9


def test_a_disadvantaged_group_exits_15_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "fairness", "--logs", str(_logs(tmp_path, 0.45)),
              "--gates", str(REPO / "config" / "gates.yaml"),
              "--governance", str(REPO / "config" / "governance.yaml")],
    )  # fmt: skip
    assert result.exit_code == 15, result.output
    assert "error: approval ratio below the bound: SEX=2: approval ratio 0.5" in result.output


def test_the_pushed_figures_fire_the_alert_rule(tmp_path: Path) -> None:
    # Given the figures of a disadvantaged group as the job pushes them
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (scripts/system_deps.sh installs prometheus)")
    from ml.monitoring.logs import read_predictions

    frame, _ = read_predictions(str(_logs(tmp_path, 0.45)))
    summary = approval_by_group(
        frame, load_governance(REPO / "config" / "governance.yaml"), FairnessBounds()
    )
    from prometheus_client import generate_latest

    exposed = generate_latest(fairness_registry("credit-risk", summary)).decode()
    series = []
    for line in exposed.splitlines():
        if line.startswith("mlops_fairness_") and "last_success" not in line:
            name, value = line.rsplit(" ", 1)
            labels = name.replace("{", '{job="mlops_fairness",', 1)
            series.append(f"      - series: '{labels}'\n        values: '{float(value)}x5'")
    women = next(g for g in summary["groups"] if (g["attribute"], g["group"]) == ("SEX", "2"))
    test = tmp_path / "test.yml"
    test.write_text(
        f"rule_files: ['{REPO / 'monitoring/prometheus/rules/governance.yml'}']\n"
        "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
        + "\n".join(series)
        + "\n    alert_rule_test:\n      - eval_time: 2m\n"
        "        alertname: ApprovalRatioBelowFourFifths\n        exp_alerts:\n"
        "          - exp_labels: {severity: critical, team: credit-risk, job: mlops_fairness, "
        "model: credit-risk, attribute: SEX, group: '2'}\n"
        "            exp_annotations:\n"
        f'              summary: "credit-risk: SEX=2 approved at {women["approval_ratio"]:.2f}'
        " of its reference group's rate\"\n"
        '              description: "The served decisions approve this protected group at less '
        "than the four-fifths bound of its reference group (governance.fairness."
        "min_approval_ratio in config/gates.yaml). Review with model risk; "
        'docs/governance.md."\n'
    )
    # When promtool evaluates the rule on them, then only the women's group alerts
    done = subprocess.run(
        [promtool, "test", "rules", str(test)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
