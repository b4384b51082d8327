"""The monitoring config against the real tools: every dashboard query parses in a real
Prometheus, and the committed rules, config and Alertmanager config pass promtool and amtool
(the same checks `make monitoring-check` runs in `make test`)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fixtures.monitoring_stack import running, start_prometheus, start_pushgateway

ROOT = Path(__file__).resolve().parents[2]
# Grafana's variables, replaced by values Prometheus accepts.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$version": "1"}


def dashboard_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "monitoring/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return found


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    pushgateway = start_pushgateway(tmp_path)
    prometheus = start_prometheus(
        tmp_path, api=None, pushgateway=pushgateway.url, alertmanager="127.0.0.1:9"
    )
    with running(pushgateway, prometheus):
        queries = dashboard_queries()
        assert len(queries) >= 20
        for name, expr in queries:
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert not re.search(r"\$\w", expr), f"{name}: unreplaced variable in {expr}"
            url = f"{prometheus.url}/api/v1/query?query={quote(expr)}"
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    assert json.loads(resp.read())["status"] == "success"
            except urllib.error.HTTPError as exc:
                pytest.fail(f"{name}: {expr}\n{exc.read().decode()}")


@pytest.mark.parametrize(
    "cmd",
    [
        ["promtool", "check", "config", "monitoring/prometheus/prometheus.yml"],
        ["promtool", "check", "rules", "monitoring/prometheus/rules/credit-risk.yml"],
        ["promtool", "test", "rules", "monitoring/prometheus/tests/credit-risk-test.yml"],
        ["promtool", "check", "rules", "monitoring/prometheus/rules/governance.yml"],
        ["promtool", "test", "rules", "monitoring/prometheus/tests/governance-test.yml"],
        ["amtool", "check-config", "monitoring/alertmanager/alertmanager.yml"],
    ],
    ids=[
        "prometheus-config",
        "rules",
        "rule-tests",
        "governance-rules",
        "governance-rule-tests",
        "alertmanager-config",
    ],
)
def test_the_committed_config_passes_the_tools(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
