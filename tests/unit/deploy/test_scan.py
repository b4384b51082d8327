"""Judging a trivy image report as `make scan-images` does: HIGH/CRITICAL with a fix block,
`.trivyignore.yaml` accepts until its expiry. Recorded reports (tests/fixtures/trivy): the
vulnerability DB cannot be downloaded here."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from ml.deploy import scan

TRIVY = Path(__file__).resolve().parents[2] / "fixtures" / "trivy"


def _report(name: str) -> dict:  # type: ignore[type-arg]
    return dict(json.loads((TRIVY / name).read_text()))


def test_only_high_or_critical_findings_with_a_fix_block() -> None:
    assert scan.blocking_findings(_report("report_clean.json"), []) == []
    assert scan.blocking_findings(_report("report_high.json"), []) == [
        "CVE-2024-0003 urllib3@2.2.1 (HIGH, fixed in 2.2.2)"
    ]


def test_an_accepted_finding_passes_until_its_expiry(tmp_path: Path) -> None:
    ignore = tmp_path / ".trivyignore.yaml"
    ignore.write_text(
        "vulnerabilities:\n  - id: CVE-2024-0003\n    purls: [pkg:pypi/urllib3@2.2.1]\n"
        "    statement: not reachable\n    expired_at: 2026-12-31\n"
    )
    accepted = scan.load_accepted(ignore)
    high = _report("report_high.json")
    assert scan.blocking_findings(high, accepted, today=date(2026, 12, 1)) == []
    assert scan.blocking_findings(high, accepted, today=date(2027, 1, 1)) != []
    other = [scan.Accepted("CVE-2024-0003", None, ("pkg:pypi/urllib3@9",))]
    assert scan.blocking_findings(high, other) != []  # narrowed to another package


def test_the_record_names_tool_db_and_findings_per_digest() -> None:
    version = json.loads((TRIVY / "version.json").read_text())
    rec = scan.record({"a@sha256:1": _report("report_high.json")}, version, [])
    assert (rec.tool, rec.tool_version, rec.db_updated_at) == ("trivy", "0.58.1",
                                                              "2026-12-05T06:00:00Z")  # fmt: skip
    assert not rec.passed
    assert rec.images["a@sha256:1"] == ["CVE-2024-0003 urllib3@2.2.1 (HIGH, fixed in 2.2.2)"]


def test_the_repository_ignore_file_loads() -> None:
    root = Path(__file__).resolve().parents[3]
    assert isinstance(scan.load_accepted(root / ".trivyignore.yaml"), list)


def test_a_scan_that_cannot_run_fails_and_records_no_pass(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ml.cli import app

    pushed = tmp_path / "images.json"
    pushed.write_text(json.dumps({"images": {"serve": "r.example/serve@sha256:" + "a" * 64}}))
    out = tmp_path / "scan.json"
    result = CliRunner().invoke(
        app, ["images", "scan", "--images", str(pushed), "--output", str(out),
              "--trivy", str(tmp_path / "no-trivy")],
    )  # fmt: skip
    assert result.exit_code == 13, result.output
    assert "make install" in " ".join(result.output.split())
    assert not out.exists()
