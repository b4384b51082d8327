"""nightly.yml's registry job fails while git and the registry disagree, a break-glass included.

A break-glass moves production's alias back through the promotions engine, which records the
move as applied (`promotion.production.version` = the older version). git still names the newer
version until the recording PR merges: `mlops promote status` classifies that as "pending" (git
ahead of the registry), which exits 0 unless `--fail-on-pending`. So the nightly job runs
`make promote-status FAIL_ON_PENDING=1`, and this test shows both halves on the engine's own
writes (the in-memory registry stand-in; the deploy's transaction makes the same engine writes
against a real MLflow in tests/integration/test_deploy_transaction.py).
"""

from __future__ import annotations

import subprocess

from ml.errors import DriftError
from ml.promotions.apply import ApplyContext, ApplyOptions, apply_spec
from ml.promotions.reconcile import Desired, diff, observe
from ml.promotions.records import applied_tag
from ml.promotions.status import EnvStatus, status_error
from tests.fixtures.memory_registry import MemoryRegistry, model, version
from tests.fixtures.workflows import ROOT, load, recipe

M = "credit-risk"
CTX = ApplyContext(git_sha="c" * 40, actor="ci", pr=None, run_url=None, time="2030-01-01T00:00:00Z")
OPTS = ApplyOptions(owner="run-1", settle=0, stages=False)


def _status(registry: MemoryRegistry, git_says: int) -> list[EnvStatus]:
    """What `mlops promote status` computes: the reconciler's diff of git against the registry."""
    actions = diff([Desired(M, git_says)], observe(registry, [M]), stages=False)  # type: ignore[arg-type]
    return [EnvStatus.of(a) for a in actions]


def _after_break_glass() -> MemoryRegistry:
    # Given v1 then v2 promoted through CD (git says v2)
    rec = {"promotion.staging.a": "{}", "promotion.production.a": "{}"}
    registry = MemoryRegistry(
        model(M, [version(M, 1, **rec), version(M, 2)], {"staging": 1, "production": 1},
              {applied_tag("staging"): "1", applied_tag("production"): "1"})
    )  # fmt: skip
    for env in ("staging", "production"):
        apply_spec(registry, [Desired(M, 2)], env, CTX, options=OPTS)  # type: ignore[arg-type]
    assert status_error(_status(registry, 2), fail_on_pending=True) is None
    # When the break-glass moves production back to v1 (the engine's rollback write)
    apply_spec(registry, [Desired(M, 1, rollback=True)], "production", CTX, options=OPTS)  # type: ignore[arg-type]
    state = registry.model_state(M)
    assert state is not None
    assert state.aliases["production"] == 1
    return registry


def test_plain_status_passes_after_a_break_glass_so_nightly_asks_for_more() -> None:
    rows = _status(_after_break_glass(), git_says=2)
    prod = next(r for r in rows if r.environment == "production")
    assert prod.state == "pending"
    assert "apply pending: v1 → v2" in prod.message
    # `mlops promote status` alone exits 0 here: the disagreement would go unnoticed
    assert status_error(rows, fail_on_pending=False) is None


def test_nightly_status_fails_until_the_recording_pr_merges() -> None:
    registry = _after_break_glass()
    # While git still says v2: nightly fails (exit 6, naming the environment and versions)
    error = status_error(_status(registry, 2), fail_on_pending=True)
    assert isinstance(error, DriftError)
    assert error.exit_code == 6
    assert "production: apply pending: v1 → v2" in str(error)
    # Once the PR that records the break-glass merges (git says v1) and CD has deployed that
    # commit (staging moves to v1; production already serves it): nightly passes
    apply_spec(registry, [Desired(M, 1, rollback=True)], "staging", CTX, options=OPTS)  # type: ignore[arg-type]
    assert status_error(_status(registry, 1), fail_on_pending=True) is None


def test_the_nightly_workflow_asks_for_the_strict_status() -> None:
    drift = load("nightly")["jobs"]["drift"]
    (step,) = [s for s in drift["steps"] if "run" in s]
    assert step["run"] == "make promote-status FAIL_ON_PENDING=1"
    assert "mlops promote status --fail-on-pending" in _dry_run("FAIL_ON_PENDING=1")
    assert "--fail-on-pending" not in _dry_run()
    assert "--fail-on-pending" not in recipe("promote-status")


def _dry_run(*args: str) -> str:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "promote-status", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout
