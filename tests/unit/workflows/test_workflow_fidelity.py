"""Every `run:` step in every workflow is exercised by a test (scripts/workflow_fidelity.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))

import workflow_fidelity  # noqa: E402


def test_every_run_step_is_listed() -> None:
    steps = workflow_fidelity.run_steps(ROOT)
    commands = {s.command for s in steps}
    assert 'make deploy ENV="$DEPLOY_ENV"' in commands
    assert "make tf-apply-plan ROOT=production" in commands
    assert "make ci-status" in commands
    assert all(s.command for s in steps)


def test_every_make_target_a_workflow_calls_exists() -> None:
    steps = workflow_fidelity.analyse(ROOT)
    missing = [f"{s.workflow}: {c}" for s in steps for c in s.calls if c.startswith("missing")]
    assert missing == []


def test_every_run_step_has_a_test() -> None:
    steps = workflow_fidelity.analyse(ROOT)
    untested = sorted(s.command for s in steps if not s.tests)
    assert untested == [], "run steps without a test:\n" + "\n".join(untested)


def test_a_fixture_module_counts_for_the_tests_importing_it(tmp_path: Path) -> None:
    (tmp_path / "tests" / "fixtures").mkdir(parents=True)
    (tmp_path / "tests" / "fixtures" / "engine.py").write_text(
        'RUN = ["scripts/start_engine.sh"]\n'
    )
    (tmp_path / "tests" / "test_uses.py").write_text("from tests.fixtures import engine\n")
    (tmp_path / "tests" / "test_other.py").write_text("from tests.fixtures import stack\n")

    tests = workflow_fidelity._test_files(tmp_path)

    assert workflow_fidelity.tests_for("scripts/start_engine", tests) == ["tests/test_uses.py"]


def test_the_script_prints_x_of_y() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "workflow_fidelity.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0
    assert "run steps exercised by a test" in proc.stdout
