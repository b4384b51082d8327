"""The committed Grafana JSON is what monitoring/grafana/dashboards.py generates, and the
provisioning files point the dashboards at the datasource they use."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "monitoring" / "grafana"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", GRAFANA / "dashboards.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dashboards"] = module
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_current() -> None:
    rendered = generator().render()
    committed = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert set(committed) == set(rendered), "run `make dashboards`"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run `make dashboards`"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    module = generator()
    assert module.main(["--out", str(tmp_path)]) == 0
    assert module.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "credit-risk-cd.json").write_text("{}")
    assert module.main(["--out", str(tmp_path), "--check"]) == 1


def test_every_panel_uses_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    for path in (GRAFANA / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"].startswith("credit-risk-")
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, path.name
        for panel in panels:
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])
            assert all(t["expr"] for t in panel["targets"]), (path.name, panel["title"])
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/credit-risk.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
