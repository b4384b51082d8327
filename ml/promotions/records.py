"""The records the engine and deploys leave in the registry, and the stage rules: one schema.

Tags (docs/contracts.md#registry-records):

- version tag `promotion.<env>.<git sha>`: JSON record of one apply (`apply_record`). Keying by
  commit keeps every promotion of a version, while a rerun of the same apply rewrites its own.
  Applies before this wrote one `promotion.<env>` tag per version; it is still read.
- model tag `promotion.<env>.version`: the version git last applied to `env` (what status expects).
- model tag `promotion.<env>.pending`: an `Operation` in flight, written BEFORE any alias write and
  deleted after verification. Found later, it means that operation was interrupted.
- model tag `lease.<env>`: a `Lease` (owner, run, expiry) that keeps two applies/deploys of the
  same environment apart as far as a lease can without compare-and-set (see `acquire_lease`).
  Lanes never block each other: staging's lease and pending record never stop production (whose
  precondition is a *verified* staging record of the version, `verified_in`), so a staging deploy
  in flight or a dead staging runner leaves production and the break-glass rollback free. The
  model-wide `lease` tag of older writers is still honoured while live.

Public API for other writers (the deploy verb): `begin_operation` / `end_operation` around any
alias move, and `acquire_lease` / `release_lease` / `leased` around the whole transaction.

Over 500 lines because the records, the lease and the stage rules are one schema: every writer
and reader of these tags goes through this module, so a change to a record changes one file.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time as _time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ml.errors import LeaseError, MlopsError

if TYPE_CHECKING:
    from ml.registry import ModelState, Registry, VersionInfo

ENVIRONMENTS: tuple[str, ...] = ("staging", "production")
STAGE_OF = {"staging": "Staging", "production": "Production"}
OPS = ("apply", "deploy", "revert")
LEASE_TAG = "lease"
"""The model-wide lease of older writers (honoured while live; new leases are per environment)."""
_NOT_IN_KEY = re.compile(r"[^0-9A-Za-z_-]")
_MODEL_TAG_SUFFIXES = ("version", "pending")


def now_iso() -> str:
    """UTC now as the records write it: 2030-01-01T00:00:00Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _loads(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- tag names ------------------------------------------------------------------------------


def applied_tag(env: str) -> str:
    """Model tag holding the version last applied to `env`."""
    return f"promotion.{env}.version"


def pending_tag(env: str) -> str:
    """Model tag holding the operation in flight in `env`."""
    return f"promotion.{env}.pending"


def lease_tag(env: str | None) -> str:
    """Model tag of `env`'s lease (`lease.<env>`); None: the model-wide tag older writers used."""
    return LEASE_TAG if env is None else f"{LEASE_TAG}.{env}"


def record_tag(env: str, git_sha: str) -> str:
    """Version tag of the apply of `git_sha` to `env`.

    `--git-sha` is free text: keep the characters MLflow allows in a key and a length that fits
    any commit id (SHA-1 or SHA-256).
    """
    return f"promotion.{env}.{_NOT_IN_KEY.sub('-', git_sha)[:64] or 'unknown'}"


def _is_record(key: str, env: str) -> bool:
    base = f"promotion.{env}"
    if key == base:
        return True
    return key.startswith(base + ".") and key[len(base) + 1 :] not in _MODEL_TAG_SUFFIXES


def has_record(info: VersionInfo, env: str) -> bool:
    """True when some apply (this format or the older single tag) reached `env` with `info`."""
    return any(_is_record(key, env) for key in info.tags)


def verified_in(info: VersionInfo, env: str, pending: Operation | None) -> bool:
    """True when an apply or deploy of `info` to `env` finished (was verified there).

    A record is written before verification; the one of an operation still pending (same
    version, same commit) is not proof yet. Any other record of the version is.
    """
    for key, raw in info.tags.items():
        if not _is_record(key, env):
            continue
        sha = (_loads(raw) or {}).get("git_sha")
        if pending is not None and pending.version == info.version and sha == pending.git_sha:
            continue
        return True
    return False


def first_verified(info: VersionInfo, env: str, pending: Operation | None) -> datetime | None:
    """When `info` was first verified in `env` (its earliest finished record), or None."""
    times = []
    for key, raw in info.tags.items():
        if not _is_record(key, env):
            continue
        data = _loads(raw) or {}
        sha = data.get("git_sha")
        if pending is not None and pending.version == info.version and sha == pending.git_sha:
            continue
        when = _parse_time(data.get("time"))
        if when is not None:
            times.append(when)
    return min(times) if times else None


def records(info: VersionInfo, env: str) -> list[dict[str, Any]]:
    """Every apply of `info` to `env`, oldest first; an unreadable one as `{"raw": value}`."""
    found = [_loads(raw) or {"raw": raw} for key, raw in info.tags.items() if _is_record(key, env)]
    return sorted(found, key=lambda r: str(r.get("time", "")))


def apply_record(
    *,
    env: str,
    version: int,
    previous: int | None,
    git_sha: str,
    pr: str | None,
    actor: str,
    run_url: str | None,
    time: str,
    rollback: bool,
    allow_skip_staging: bool,
    resync: bool = False,
) -> str:
    """JSON of one apply record (the format `records` reads and `history` joins with git).

    `resync`: the apply restored git's version after the alias was moved outside git (a
    repair, not a promotion)."""
    return json.dumps(
        {
            "environment": env,
            "version": version,
            "git_sha": git_sha,
            "pr": pr,
            "actor": actor,
            "run_url": run_url,
            "time": time,
            "previous": previous,
            "rollback": rollback,
            "allow_skip_staging": allow_skip_staging,
            "resync": resync,
        },
        sort_keys=True,
    )


def is_rollback(state: ModelState | None, target: int) -> bool:
    """Target is older than the current production version, or was once production."""
    if state is None:
        return False
    current = state.aliases.get("production")
    if current is None or current == target:
        return False
    info = state.versions.get(target)
    return target < current or (info is not None and has_record(info, "production"))


def applied_version(tags: Mapping[str, str], env: str) -> int | None:
    """The version `promotion.<env>.version` names, or None."""
    raw = tags.get(applied_tag(env), "")
    return int(raw) if raw.isdigit() else None


# --- stage rules ----------------------------------------------------------------------------


def expected_stages(aliases: Mapping[str, int], stages: Mapping[int, str]) -> dict[int, str]:
    """The legacy stage every version should carry given the aliases (the mirror's one rule).

    The production alias's version is `Production`; the staging alias's version is `Staging`
    unless it is also production (a version has one stage: it keeps `Production`, and no version
    is in `Staging`); any other version in `Staging` or `Production` is `Archived`; the rest keep
    the stage they have.
    """
    prod, stg = aliases.get("production"), aliases.get("staging")
    wanted = {}
    for version, stage in stages.items():
        if version == prod:
            wanted[version] = "Production"
        elif version == stg:
            wanted[version] = "Staging"
        elif stage in ("Staging", "Production"):
            wanted[version] = "Archived"
        else:
            wanted[version] = stage
    return wanted


def stage_fixes(
    env: str,
    aliases: Mapping[str, int],
    stages: Mapping[int, str],
    leave: Collection[str] = (),
) -> list[tuple[int, str, str]]:
    """(version, stage now, stage wanted) for the stage writes `env`'s alias implies.

    Only versions whose stage is or should be `env`'s stage, or that `env`'s alias names.
    Fixes that move a version into or out of a stage in `leave` are left out: the reconciler
    passes the stage of an environment whose own apply was interrupted, so its rerun (not this
    one) finishes its moves.
    """
    wanted = expected_stages(aliases, stages)
    mine = STAGE_OF[env]
    target = aliases.get(env)
    # The target first: `models:/<name>/<Stage>` never resolves to nothing in between.
    return [
        (version, stages[version], stage)
        for version, stage in sorted(wanted.items(), key=lambda kv: (kv[0] != target, kv[0]))
        if stage != stages[version]
        and (mine in (stage, stages[version]) or version == target)
        and not ({stage, stages[version]} & set(leave))
    ]


# --- operations in flight -------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """An alias move in flight (`promotion.<env>.pending`): what, from where, by whom, when.

    `op` is "apply" (the reconciler), "deploy" or "revert" (the deploy verb); `release` names
    the release a deploy rolls out. Unreadable JSON is kept in `raw` so status still reports it.
    """

    op: str
    version: int | None
    previous: int | None
    git_sha: str | None
    release: str | None
    run_url: str | None
    actor: str | None
    time: str | None
    raw: str | None = None

    @classmethod
    def parse(cls, raw: str) -> Operation:
        """Read a pending record; never raises (an unreadable one keeps its text in `raw`)."""
        data = _loads(raw) or {}

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        op = text("op") or "?"
        return cls(
            op=op,
            version=number("version"),
            previous=number("previous"),
            git_sha=text("git_sha"),
            release=text("release"),
            run_url=text("run_url"),
            actor=text("actor"),
            time=text("time"),
            raw=None if data else raw[:200],
        )

    def to_json(self) -> str:
        """The tag value."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "raw"}, sort_keys=True)

    def describe(self, env: str) -> str:
        """`apply of v2 (was v1) in staging, commit abc123, by ci at T, run URL`."""
        if self.raw is not None:
            return f"operation in {env} with an unreadable record {self.raw!r}"
        what = f"{self.op}" + (f" of release {self.release}" if self.release else "")
        target = f"v{self.version}" if self.version is not None else "v?"
        was = f"v{self.previous}" if self.previous is not None else "none"
        parts = [f"{what} ({target}, was {was}) in {env}"]
        if self.git_sha:
            parts.append(f"commit {self.git_sha[:12]}")
        if self.actor or self.time:
            parts.append(f"by {self.actor or '?'} at {self.time or '?'}")
        if self.run_url:
            parts.append(self.run_url)
        return ", ".join(parts)


def begin_operation(
    registry: Registry,
    model: str,
    env: str,
    op: str,
    *,
    version: int,
    previous: int | None,
    git_sha: str,
    actor: str,
    run_url: str | None = None,
    release: str | None = None,
    time: str | None = None,
) -> Operation:
    """Record an alias move BEFORE making it: `status` reports it as interrupted until
    `end_operation` clears it. Call with the lease held (`leased`)."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, not {op!r}")
    operation = Operation(
        op, version, previous, git_sha, release, run_url, actor, time or now_iso()
    )
    registry.set_model_tag(model, pending_tag(env), operation.to_json())
    return operation


def end_operation(registry: Registry, model: str, env: str) -> None:
    """Clear the pending record once the move is verified (or reverted and verified)."""
    registry.delete_model_tag(model, pending_tag(env))


def pending_operation(tags: Mapping[str, str], env: str) -> Operation | None:
    """The operation recorded in flight in `env`, or None."""
    raw = tags.get(pending_tag(env))
    return None if raw is None else Operation.parse(raw)


# --- the lease ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """Who may move a model's aliases until `expires` (model tag `lease`)."""

    owner: str
    run_url: str | None
    acquired: str
    expires: str

    @classmethod
    def parse(cls, raw: str | None) -> Lease | None:
        """The lease a tag holds; None when absent. Unreadable JSON counts as expired."""
        data = _loads(raw)
        if data is None:
            return None
        return cls(
            owner=str(data.get("owner", "?")),
            run_url=data.get("run_url"),
            acquired=str(data.get("acquired", "")),
            expires=str(data.get("expires", "")),
        )

    def live(self, at: datetime | None = None) -> bool:
        """True until `expires` (an unparsable expiry is not live)."""
        expires = _parse_time(self.expires)
        return expires is not None and expires > (at or datetime.now(UTC))

    def holder(self) -> str:
        """`owner (run URL) until T` for messages."""
        run = f" ({self.run_url})" if self.run_url else ""
        return f"{self.owner}{run} until {self.expires}"


_NOBODY = Lease("", None, "", "")
_PROCESS_START = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def lease_owner(env: Mapping[str, str] | None = None) -> str:
    """Who takes the lease: ML_PROMOTE_LEASE_OWNER, else the workflow run (a re-run attempt of
    the same run is the same owner, so it can finish what a killed attempt left), else
    `user@host:pid:start` - unique per process, so two terminals on one machine never both
    proceed. A lease whose local holder is gone (the pid no longer runs on this host) counts as
    lapsed, so a rerun after a crash proceeds; from another host it lapses at its expiry, or
    `mlops promote unlock` releases it."""
    env = os.environ if env is None else env
    if env.get("ML_PROMOTE_LEASE_OWNER"):
        return env["ML_PROMOTE_LEASE_OWNER"]
    if env.get("GITHUB_RUN_ID"):
        return f"{env.get('GITHUB_REPOSITORY', '')}#run{env['GITHUB_RUN_ID']}"
    user = env.get("USER") or env.get("USERNAME") or "user"
    return f"{user}@{socket.gethostname()}:{os.getpid()}:{_PROCESS_START}"


def holder_alive(owner: str) -> bool | None:
    """Whether a default local owner (`user@host:pid:start`) is still running: None when that
    cannot be told from here (another host, a CI run, a custom owner)."""
    match = re.fullmatch(r"[^@]*@(?P<host>[^:]+):(?P<pid>\d+):\S+", owner)
    if match is None or match["host"] != socket.gethostname():
        return None
    if int(match["pid"]) == os.getpid():
        return True
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_leases(tags: Mapping[str, str]) -> dict[str, Lease]:
    """Every lease tag on a model (`lease`, `lease.<env>`) → its lease, live or not."""
    out = {}
    for key, raw in tags.items():
        if key == LEASE_TAG or key.startswith(LEASE_TAG + "."):
            lease = Lease.parse(raw)
            if lease is not None:
                out[key] = lease
    return out


def acquire_lease(
    registry: Registry,
    model: str,
    owner: str,
    *,
    run_url: str | None = None,
    seconds: float = 900,
    settle: float = 0.2,
    env: str | None = None,
) -> Lease:
    """Take the lease of `model` in `env` (None: model-wide, as older writers did) or raise
    `LeaseError` naming the live holder. A live model-wide lease blocks every environment.

    Read → refuse if another owner's lease is live → write ours → wait `settle` → read again and
    refuse if another owner's write landed after ours. Without compare-and-set in MLflow this
    narrows, but cannot close, the window in which two writers both believe they hold it: two
    acquirers whose writes and re-reads interleave within `settle` can both proceed. What it does
    guarantee: an apply or deploy that starts while another's lease is live (seconds to minutes
    later, the usual case of two merges or a manual apply during CD) is refused before any write,
    with the holder named; a crashed holder blocks others only until `expires`. Serialising
    workflows (`concurrency:`) remains the primary guard; verification after writes catches what
    slips through.
    """
    tag = lease_tag(env)
    _refuse_if_held(model, registry.model_tags(model), owner, env)
    lease = _new_lease(owner, run_url, seconds)
    _write_lease(registry, model, tag, json.dumps(asdict(lease), sort_keys=True), owner)
    if settle:
        _time.sleep(settle)
    _refuse_if_lost(model, registry.model_tags(model), owner, env)
    return lease


def _refuse_if_held(model: str, tags: Mapping[str, str], owner: str, env: str | None) -> None:
    """Raise `LeaseError` naming the holder when another owner's lease on `model` is live."""
    # an environment's lease yields to a model-wide one; a model-wide one to every lane's
    keys = (
        (lease_tag(env), LEASE_TAG) if env is not None else (LEASE_TAG, *sorted(find_leases(tags)))
    )
    for key in dict.fromkeys(keys):
        found = Lease.parse(tags.get(key))
        # a holder on this host whose process is gone can never finish: its lease has lapsed
        # (a rerun after a local crash or SIGKILL proceeds, as a CI re-run attempt does)
        dead = found is not None and holder_alive(found.owner) is False
        if found is not None and found.live() and found.owner != owner and not dead:
            scope = f" in {env}" if env else ""
            raise LeaseError(
                f"{model}{scope} is leased by {found.holder()} (hint: wait; if that run is dead, "
                f"`mlops promote unlock --env {env or '<env>'}` releases it)"
            )


def _refuse_if_lost(model: str, tags: Mapping[str, str], owner: str, env: str | None) -> None:
    """Raise `LeaseError` when the lease tag read back is not ours (another write landed)."""
    now = Lease.parse(tags.get(lease_tag(env)))
    if now is None or now.owner != owner:
        raise _lost(model, now.holder() if now else "nobody (deleted)")


def _lost(model: str, holder: str) -> LeaseError:
    return LeaseError(f"{model}: lost the lease race to {holder} (hint: retry later)")


def _write_lease(registry: Registry, model: str, tag: str, value: str, owner: str) -> None:
    """Write our lease; a write the store refused because a rival's lease landed first is a
    lost race (`LeaseError`), not a registry failure.

    MLflow sets a tag by read-then-insert: two first-time writers of the same tag both insert,
    and the store's unique key refuses the later one (SQLite "UNIQUE constraint failed",
    PostgreSQL "duplicate key"). Read back after any refused write: a live lease of another
    owner means that is what happened; anything else is re-raised as it came.
    """
    try:
        registry.set_model_tag(model, tag, value)
    except MlopsError as err:
        try:
            now = Lease.parse(registry.model_tags(model).get(tag))
        except MlopsError:
            raise err from None
        if now is None or now.owner == owner or not now.live():
            raise
        raise _lost(model, now.holder()) from err


def _new_lease(owner: str, run_url: str | None, seconds: float) -> Lease:
    start = datetime.now(UTC)
    return Lease(
        owner=owner,
        run_url=run_url,
        acquired=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires=(start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def release_lease(registry: Registry, model: str, owner: str, env: str | None = None) -> None:
    """Drop the lease of `env` if it is still ours (never someone else's)."""
    tag = lease_tag(env)
    current = Lease.parse(registry.model_tags(model).get(tag))
    if current is not None and current.owner == owner:
        registry.delete_model_tag(model, tag)


class Held:
    """The leases `leased` holds, and the models as read right after taking them.

    `states` is the read-back that confirmed every lease (a full read of each model, taken
    under the lease): apply diffs against it instead of reading again. `seen` records a later
    read (apply's verification) so releasing needs no read of its own.
    """

    def __init__(self, leases: list[Lease], states: Mapping[str, ModelState | None]) -> None:
        self.leases = leases
        self.states = dict(states)
        self._fresh: dict[str, Mapping[str, str]] = {}

    def seen(self, states: Mapping[str, ModelState | None]) -> None:
        """Models read after every write of this holder but the release."""
        self._fresh.update({n: s.tags for n, s in states.items() if s is not None})

    def tags_seen(self, models: Collection[str]) -> dict[str, Mapping[str, str]]:
        """The tags `seen` recorded for `models` (those it has)."""
        return {m: self._fresh[m] for m in models if m in self._fresh}


def _each(workers: int, items: list[str], call: Callable[[str], None]) -> list[str]:
    """`call(item)` for every item, concurrently; the items whose call succeeded. The first
    error is raised after every call finished."""
    done: list[str] = []
    errors: list[BaseException] = []

    def one(item: str) -> None:
        try:
            call(item)
            done.append(item)
        except BaseException as exc:  # re-raised below, after the others finished
            errors.append(exc)

    if workers <= 1 or len(items) <= 1:
        for item in items:
            one(item)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            list(pool.map(one, items))
    if errors:
        raise errors[0]
    return done


@contextmanager
def leased(
    registry: Registry,
    models: list[str],
    owner: str,
    *,
    run_url: str | None = None,
    seconds: float = 900,
    settle: float = 0.2,
    env: str | None = None,
    workers: int = 4,
) -> Iterator[Held]:
    """Hold the lease of every model in `models` in `env` for a block; released on the way out,
    error or not. `env=None` takes the model-wide lease older writers use (it blocks every
    environment).

    One read of every model's tags → refuse (nothing written) if another owner's lease is live
    on any → write ours on every model (concurrently) → wait `settle` → one read of every model
    → refuse if another owner's write landed after ours. What `acquire_lease` guarantees, for a
    set of models in three round trips plus the writes; the read-back is yielded (`Held`).
    """
    names = sorted(set(models))
    tag = lease_tag(env)
    for model, tags in registry.models_tags(names).items():
        _refuse_if_held(model, tags, owner, env)
    lease = _new_lease(owner, run_url, seconds)
    value = json.dumps(asdict(lease), sort_keys=True)
    written: list[str] = []
    held: Held | None = None

    def take(model: str) -> None:
        _write_lease(registry, model, tag, value, owner)
        written.append(model)

    try:
        _each(workers, names, take)
        # Not skipped when the first read found no lease: that is the racing case itself (a
        # writer that read "free" before our write lands its own within the window and wins
        # the read-back; without the wait both would proceed).
        if settle:
            _time.sleep(settle)
        states = registry.read_models(names, workers=workers)
        for model in names:
            state = states.get(model)
            _refuse_if_lost(model, state.tags if state else {}, owner, env)
        held = Held([lease] * len(names), states)
        yield held
    finally:
        known = held.tags_seen(written) if held is not None else {}
        stale = [m for m in written if m not in known]
        try:
            known = {**known, **(registry.models_tags(stale) if stale else {})}
        except MlopsError:
            known = {m: tags for m, tags in known.items() if m not in stale}
        ours = [
            m for m, tags in known.items() if (Lease.parse(tags.get(tag)) or _NOBODY).owner == owner
        ]
        # a lease left behind lapses at its expiry; the block's own error matters more
        with suppress(MlopsError):
            _each(workers, ours, lambda m: registry.delete_model_tag(m, tag))
