"""The reconciler's pure diff, one row per observed state (no MLflow: states are built here).

Each row: the registry as observed, the environments diffed, and per environment the action's
kind, the status it reports and the writes apply would make (by step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import pytest

from ml.errors import ApplyError, GateError, InterruptedOperationError
from ml.promotions.gates import GateResult, Verdict
from ml.promotions.reconcile import (
    Desired,
    Kind,
    Observed,
    Refusal,
    Step,
    Sync,
    diff,
    refusal_error,
)
from ml.promotions.records import Operation, applied_tag, pending_tag
from ml.registry import ModelState
from tests.fixtures.memory_registry import model, version

M = "credit-risk"
REC = {"promotion.staging.aaa": "{}", "promotion.production.aaa": "{}"}
STG = {"promotion.staging.aaa": "{}"}


def applied(**envs: int) -> dict[str, str]:
    return {applied_tag(env): str(v) for env, v in envs.items()}


def pending(env: str, op: str = "apply", v: int = 2, prev: int | None = 1, **kw: str) -> dict:
    record = Operation(op, v, prev, "abc123", kw.get("release"), None, "ci", "T")
    return {pending_tag(env): record.to_json()}


# v1 in production (both aliases, applied, recorded), v2 registered
BASE = model(M, [version(M, 1, "Production", **REC), version(M, 2)],
             {"staging": 1, "production": 1}, applied(staging=1, production=1))  # fmt: skip
# both at v2, done
DONE = model(M, [version(M, 1, "Archived", **REC), version(M, 2, "Production", **REC)],
             {"staging": 2, "production": 2}, applied(staging=2, production=2))  # fmt: skip


@dataclass
class Row:
    id: str
    state: ModelState | None
    expect: dict[str, tuple[Kind, Sync, list[Step]]]
    desired: int = 2
    envs: tuple[str, ...] = ("staging", "production")
    stages: bool = True
    rollback: bool = False
    allow_skip: bool = False
    reason: str = ""  # substring of some action's reasons
    refusal: Refusal | None = None
    stage_writes: list[str] = field(default_factory=list)  # "v2=Staging" in apply order


FULL = [Step.PENDING, Step.ALIAS, Step.STAGE, Step.RECORD, Step.APPLIED, Step.CLEAR]
FULL_ARCHIVE = [Step.PENDING, Step.ALIAS, Step.STAGE, Step.STAGE, Step.RECORD, Step.APPLIED,
                Step.CLEAR]  # fmt: skip

ROWS = [
    Row("fresh model: both envs promote, staging first",
        model(M, [version(M, 1), version(M, 2)]),
        {"staging": (Kind.PROMOTE, Sync.PENDING, FULL),
         "production": (Kind.PROMOTE, Sync.PENDING, FULL)},
        stage_writes=["v2=Staging", "v2=Production"]),
    Row("in sync", DONE,
        {"staging": (Kind.NOOP, Sync.IN_SYNC, []), "production": (Kind.NOOP, Sync.IN_SYNC, [])}),
    Row("merged, not applied: pending", BASE,
        {"staging": (Kind.PROMOTE, Sync.PENDING, FULL),
         "production": (Kind.PROMOTE, Sync.PENDING, FULL_ARCHIVE)},
        stage_writes=["v2=Staging", "v2=Production", "v1=Archived"]),
    Row("production alone, never in staging: refused", BASE,
        {"production": (Kind.REFUSED, Sync.PENDING, [])}, envs=("production",),
        refusal=Refusal.STAGING_FIRST, reason="never verified in staging"),
    Row("production alone, --allow-skip-staging", BASE,
        {"production": (Kind.PROMOTE, Sync.PENDING, FULL_ARCHIVE)}, envs=("production",),
        allow_skip=True),
    Row("alias moved outside git: drift, apply re-syncs it (not a rollback)",
        model(M, [version(M, 1, "Production", **REC), version(M, 2, "Production")],
              {"staging": 1, "production": 2}, applied(staging=1, production=1)),
        {"production": (Kind.RESYNC, Sync.DRIFT, [Step.PENDING, Step.ALIAS, Step.STAGE,
                                                    Step.RECORD, Step.CLEAR])}, desired=1,
        envs=("production",), reason="alias moved outside git: v1 → v2"),
    Row("alias removed outside git", model(M, [version(M, 1, "Production", **REC)],
        {"staging": 1}, applied(staging=1, production=1)),
        {"production": (Kind.RESYNC, Sync.DRIFT, [Step.PENDING, Step.ALIAS, Step.RECORD,
                                                   Step.CLEAR])},
        desired=1, envs=("production",), reason="alias removed outside git"),
    Row("alias set outside git (never applied)", model(M, [version(M, 1), version(M, 2)],
        {"staging": 2}), {"staging": (Kind.REPAIR, Sync.DRIFT, [Step.PENDING, Step.STAGE,
                          Step.RECORD, Step.APPLIED, Step.CLEAR])},
        envs=("staging",), reason="alias set to v2 outside git"),
    Row("last applied version deleted", model(M, [version(M, 2, "Staging", **STG)],
        {"staging": 2}, applied(staging=1)),
        {"staging": (Kind.REPAIR, Sync.DRIFT, [Step.PENDING, Step.RECORD, Step.APPLIED,
                                               Step.CLEAR])},
        envs=("staging",), reason="v1 (last applied) was deleted"),
    Row("stage left wrong: staging back on the production version, v2 still Staging",
        model(M, [version(M, 1, "Production", **REC), version(M, 2, "Staging", **STG)],
              {"staging": 1, "production": 1}, applied(staging=1, production=1)),
        {"staging": (Kind.REPAIR, Sync.DRIFT, [Step.PENDING, Step.STAGE, Step.RECORD,
                                               Step.CLEAR])},
        desired=1, envs=("staging",), reason="stage of v2 is Staging, expected Archived",
        stage_writes=["v2=Archived"]),
    Row("stages off: a wrong stage is not drift",
        model(M, [version(M, 1, "Production", **REC), version(M, 2, "Staging", **STG)],
              {"staging": 1, "production": 1}, applied(staging=1, production=1)),
        {"staging": (Kind.NOOP, Sync.IN_SYNC, [])}, desired=1, envs=("staging",), stages=False),
    Row("interrupted apply in staging: production refuses v2 (killed-apply defect)",
        model(M, [version(M, 1, "Production", **REC), version(M, 2)],
              {"staging": 2, "production": 1},
              {**applied(staging=1, production=1), **pending("staging")}),
        {"production": (Kind.REFUSED, Sync.PENDING, [])}, envs=("production",),
        refusal=Refusal.STAGING_FIRST),
    Row("interrupted apply in staging: staging resumes, plan is not 'no change'",
        model(M, [version(M, 1, "Production", **REC), version(M, 2)],
              {"staging": 2, "production": 1},
              {**applied(staging=1, production=1), **pending("staging")}),
        {"staging": (Kind.REPAIR, Sync.INTERRUPTED, [Step.PENDING, Step.STAGE, Step.RECORD,
                                                     Step.APPLIED, Step.CLEAR])},
        envs=("staging",), reason="interrupted apply (v2, was v1) in staging"),
    Row("interrupted deploy of a release: reported, apply refused",
        model(M, [version(M, 1, "Production", **REC), version(M, 2, "Production", **REC)],
              {"staging": 2, "production": 2},
              {**applied(staging=2, production=2),
               **pending("production", op="deploy", release="r-7")}),
        {"production": (Kind.REFUSED, Sync.INTERRUPTED, [])}, envs=("production",),
        refusal=Refusal.INTERRUPTED, reason="deploy of release r-7"),
    Row("unknown model", None,
        {"staging": (Kind.REFUSED, Sync.DRIFT, []), "production": (Kind.REFUSED, Sync.DRIFT, [])},
        refusal=Refusal.MISSING, reason="unknown model 'credit-risk'"),
    Row("unknown version", BASE, {"staging": (Kind.REFUSED, Sync.DRIFT, [])}, desired=9,
        envs=("staging",), refusal=Refusal.MISSING, reason="v9 does not exist"),
    Row("a prompt, not a model", model(M, [version(M, 1)], {}, {"mlflow.prompt.is_prompt": "true"}),
        {"staging": (Kind.REFUSED, Sync.DRIFT, [])}, desired=1, envs=("staging",),
        refusal=Refusal.PROMPT),
    Row("rollback to the former production version", DONE,
        {"staging": (Kind.ROLLBACK, Sync.PENDING, FULL),
         "production": (Kind.ROLLBACK, Sync.PENDING, FULL_ARCHIVE)}, desired=1, rollback=True,
        stage_writes=["v1=Staging", "v1=Production", "v2=Archived"]),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_diff_row(row: Row) -> None:
    # Given the observed state, when diffed
    observed = Observed({M: row.state})
    desired = [Desired(M, row.desired, rollback=row.rollback, where="promotions.yaml:5")]
    actions = diff(
        desired, observed, row.envs, stages=row.stages, allow_skip_staging=row.allow_skip
    )
    # Then each environment's kind, status and writes are as the row says
    assert [a.env for a in actions] == list(row.envs)
    for a in actions:
        kind, sync, steps = row.expect[a.env]
        assert (a.kind, a.sync, [w.step for w in a.writes]) == (kind, sync, steps), a
    if row.reason:
        assert any(row.reason in r for a in actions for r in a.reasons), actions
    if row.refusal:
        assert {a.refusal for a in actions if a.kind == Kind.REFUSED} == {row.refusal}
    if row.stage_writes:
        shown = [f"v{w.version}={w.stage}" for a in actions for w in a.writes if w.stage]
        # production's stage writes follow staging's planned move
        assert sorted(shown) == sorted(row.stage_writes)


def test_not_ready_is_refused() -> None:
    state = model(M, [replace(version(M, 1), status="PENDING_REGISTRATION")])
    action = diff([Desired(M, 1)], Observed({M: state}), ("staging",))[0]
    assert (action.kind, action.refusal) == (Kind.REFUSED, Refusal.NOT_READY)


def _verdict(passed: bool) -> Verdict:
    return Verdict(M, 2, (GateResult(M, "floor:roc_auc", passed, "roc_auc 0.6 >= 0.75"),))


@pytest.mark.parametrize(
    ("state", "passed", "kind"),
    [
        (BASE, False, Kind.REFUSED),  # the alias would move: failing gates refuse it
        (BASE, True, Kind.PROMOTE),
        # the alias is already on v2 (an interrupted apply): gates do not block the repair
        (model(M, [version(M, 1, "Production", **REC), version(M, 2)], {"staging": 2,
         "production": 1}, {**applied(staging=1, production=1), **pending("staging")}),
         False, Kind.REPAIR),
    ],
)  # fmt: skip
def test_gate_verdicts_are_inputs(state: ModelState, passed: bool, kind: Kind) -> None:
    action = diff(
        [Desired(M, 2)], Observed({M: state}), ("staging",), {(M, "staging"): _verdict(passed)}
    )[0]
    assert action.kind == kind
    if kind == Kind.REFUSED:
        assert action.refusal == Refusal.GATES
        assert "floor:roc_auc" in action.reasons[0]


def test_refusals_map_to_one_error_each() -> None:
    def refused(state: ModelState | None, envs: tuple[str, ...], v: int = 2) -> type:
        actions = diff([Desired(M, v, where="p.yaml:3")], Observed({M: state}), envs)
        error = refusal_error(actions)
        assert error is not None
        assert "p.yaml:3" in str(error)
        return type(error)

    assert refused(None, ("staging",)) is GateError
    assert refused(BASE, ("production",)) is ApplyError
    deploying = model(M, [version(M, 2)], {"production": 2},
                      {**applied(production=2), **pending("production", op="deploy")})  # fmt: skip
    assert refused(deploying, ("production",)) is InterruptedOperationError
    assert refusal_error(diff([Desired(M, 2)], Observed({M: DONE}))) is None


def test_previous_is_git_last_apply_or_the_interrupted_apply_s() -> None:
    # A resumed apply records the version the first attempt moved away from, not its own alias.
    resumed = model(M, [version(M, 1, "Production", **REC), version(M, 2)],
                    {"staging": 2, "production": 1},
                    {**applied(staging=1, production=1), **pending("staging", prev=1)})  # fmt: skip
    assert diff([Desired(M, 2)], Observed({M: resumed}), ("staging",))[0].previous == 1
    assert diff([Desired(M, 2)], Observed({M: BASE}), ("staging",))[0].previous == 1


def test_an_unreadable_pending_record_is_still_interrupted() -> None:
    state = model(M, [version(M, 1)], {"staging": 1},
                  {**applied(staging=1), pending_tag("staging"): "{not json"})  # fmt: skip
    action = diff([Desired(M, 1)], Observed({M: state}), ("staging",))[0]
    assert action.sync == Sync.INTERRUPTED
    assert "unreadable record" in action.reasons[0]
    assert json.loads(Operation("apply", 1, None, "s", None, None, "a", "t").to_json())["op"]


# --- lanes: staging's live state never blocks production --------------------------------------

# v1 ran in both environments; v2 was verified in staging (commit aaa) and is production's target
VERIFIED = model(M, [version(M, 1, "Production", **REC), version(M, 2, "Staging", **STG)],
                 {"staging": 2, "production": 1}, applied(staging=2, production=1))  # fmt: skip


def _with_tags(state: ModelState, **tags: str) -> ModelState:
    return replace(state, tags={**state.tags, **tags})


STAGING_IN_FLIGHT = _with_tags(
    VERIFIED,
    **pending("staging", op="deploy", v=3, prev=2, release="r3"),
    **{"lease.staging": json.dumps({"owner": "dead-runner", "run_url": None, "acquired": "T",
                                    "expires": "2999-01-01T00:00:00Z"})},
)  # fmt: skip


@pytest.mark.parametrize(
    "state", [VERIFIED, STAGING_IN_FLIGHT], ids=["staging idle", "staging deploy in flight"]
)
def test_production_needs_a_verified_staging_record_never_staging_s_live_state(
    state: ModelState,
) -> None:
    # Given v2 verified in staging, and (second case) a staging deploy of v3 in flight whose
    # runner died holding staging's lease
    # When production is diffed for v2
    action = diff([Desired(M, 2)], Observed({M: state}), ("production",))[0]
    # Then production promotes: staging's pending record and lease are staging's business
    assert action.kind == Kind.PROMOTE, action.reasons
    assert refusal_error([action]) is None


def test_break_glass_rollback_goes_through_whatever_staging_is_doing() -> None:
    # Given production on v2 and staging mid-deploy of v3 (pending record, a dead holder's lease)
    state = model(M, [version(M, 1, "Archived", **REC), version(M, 2, "Production", **REC),
                      version(M, 3, "Staging")], {"staging": 3, "production": 2},
                  {**applied(staging=2, production=2),
                   **pending("staging", op="deploy", v=3, prev=2, release="r3")})  # fmt: skip
    # When break-glass takes production back to v1
    action = diff([Desired(M, 1, rollback=True)], Observed({M: state}), ("production",))[0]
    # Then it is a rollback with writes, not refused
    assert action.kind == Kind.ROLLBACK, action.reasons
    assert action.moves_alias


def test_a_version_whose_staging_apply_is_still_pending_is_not_verified_there() -> None:
    # Given staging's apply of v2 wrote its record (commit abc123) but was never verified
    record = json.dumps({"git_sha": "abc123", "time": "T", "version": 2})
    state = model(M, [version(M, 1, "Production", **REC),
                      version(M, 2, **{"promotion.staging.abc123": record})],
                  {"staging": 2, "production": 1},
                  {**applied(staging=2, production=1), **pending("staging")})  # fmt: skip
    # Then production refuses v2: the record is not proof until staging's apply finishes
    action = diff([Desired(M, 2)], Observed({M: state}), ("production",))[0]
    assert action.refusal == Refusal.STAGING_FIRST


# --- rollbacks are rollbacks ------------------------------------------------------------------


def test_rollback_true_to_a_version_production_never_ran_is_refused_with_exit_8() -> None:
    from ml.errors import RollbackError

    # Given production on v1, v2 only ever in staging
    actions = diff([Desired(M, 2, rollback=True)], Observed({M: BASE}), ("production",))
    # Then the plan refuses it as not a rollback (exit 8), naming why
    assert actions[0].refusal == Refusal.NOT_A_ROLLBACK
    assert (
        "never applied to production, and is newer than production's v1" in (actions[0].reasons[0])
    )
    assert isinstance(refusal_error(actions), RollbackError)


def test_a_re_sync_is_not_a_rollback_and_skips_staging_first() -> None:
    # Given git applied v2 to production; someone moved the alias back to v1 by hand
    state = model(M, [version(M, 1, "Production", **REC), version(M, 2, **REC)],
                  {"staging": 2, "production": 1}, applied(staging=2, production=2))  # fmt: skip
    action = diff([Desired(M, 2)], Observed({M: state}), ("production",))[0]
    # Then apply re-syncs: it moves the alias back, records the hand-moved version as previous
    assert (action.kind, action.sync, action.resync) == (Kind.RESYNC, Sync.DRIFT, True)
    assert (action.previous, action.rollback) == (1, False)
    assert action.moves_alias


# --- environments pinned apart ----------------------------------------------------------------


def test_pins_move_staging_and_leave_production() -> None:
    # Given v1 in both environments; git pins staging to v2 and production to v1
    state = model(M, [version(M, 1, "Production", **REC), version(M, 2)],
                  {"staging": 1, "production": 1}, applied(staging=1, production=1))  # fmt: skip
    pinned = Desired(M, 1, pins=(("staging", 2), ("production", 1)))
    staging, production = diff([pinned], Observed({M: state}))
    # Then staging promotes to v2 and production stays on v1 (no change)
    assert (staging.kind, staging.desired) == (Kind.PROMOTE, 2)
    assert (production.kind, production.desired) == (Kind.NOOP, 1)
