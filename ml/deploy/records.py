"""The registry tags a deploy leaves, in exactly the CONTRACTS.md format.

- model tag `deploy.<env>`: where the deploy of a release to an environment stands (phase), and
  the state it replaced (alias versions, task definition, release), written *before* anything
  moves so an interrupted deploy can be told apart from an out-of-band change and reverted;
- model tag `promotion.<env>.pending` on every model whose alias the deploy moves: the pending
  operation the promotions engine's `status` reports as "interrupted deploy of release R in E";
  removed once the deploy (or its revert) is verified;
- model tag `lease`: one deploy or apply at a time per model, as far as a lease can do that
  (MLflow has no compare-and-set: write, read back, and refuse a live lease of another owner).

This module is the only writer of these tags in `ml.deploy`: when the promotions engine's record
helpers land (issue 18), these functions are re-pointed at them and nothing else changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ml.errors import LeaseError, RegistryError
from ml.registry import Registry, registry_errors

# Phases in order; the last three end a deploy (CONTRACTS.md).
PHASES = (
    "started",
    "alias-moved",
    "task-registered",
    "rolling-out",
    "smoke",
    "reverting",
    "done",
    "reverted",
    "revert-failed",
)
TERMINAL = frozenset({"done", "reverted", "revert-failed"})
LEASE_TAG = "lease"


def deploy_tag(env: str) -> str:
    """Model tag of the deploy record of `env` (`staging`, `production`, `mlflow`)."""
    return f"deploy.{env}"


def pending_tag(env: str) -> str:
    """Model tag of the pending operation on `env`'s alias."""
    return f"promotion.{env}.pending"


def now_iso() -> str:
    """UTC time in the format every record uses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Previous:
    """The state a deploy replaces, and what a revert restores."""

    versions: dict[str, int | None]
    task_definition: str
    release: str | None = None


@dataclass(frozen=True)
class DeployRecord:
    """`deploy.<env>`: {release, phase, previous {versions, task_definition}, ...}."""

    release: str
    phase: str
    previous: Previous
    time: str
    new_task_definition: str | None = None
    run_url: str | None = None
    actor: str | None = None
    service: str | None = None
    image: str | None = None
    failed_step: str | None = None
    error: str | None = None
    allow_skip_staging: bool = False
    breakglass: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True when the deploy ended (done, reverted or revert-failed)."""
        return self.phase in TERMINAL

    def to_json(self) -> str:
        """The tag value; keys sorted so equal records are equal strings."""
        data = asdict(self)
        data.update(data.pop("extra"))
        return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> DeployRecord:
        """Parse a tag value; `RegistryError` when it is not a deploy record."""
        try:
            data = json.loads(raw)
            prev = data.pop("previous")
            known = set(cls.__dataclass_fields__) - {"previous", "extra"}
            return cls(
                previous=Previous(
                    versions={k: v for k, v in (prev.get("versions") or {}).items()},
                    task_definition=str(prev["task_definition"]),
                    release=prev.get("release"),
                ),
                extra={k: v for k, v in data.items() if k not in known},
                **{k: v for k, v in data.items() if k in known},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistryError(f"unreadable deploy record: {raw[:120]!r} ({exc})") from exc


def read_deploy(tags: dict[str, str], env: str) -> DeployRecord | None:
    """The deploy record of `env` among a model's tags, or None."""
    raw = tags.get(deploy_tag(env))
    return DeployRecord.from_json(raw) if raw else None


def write_deploy(registry: Registry, model: str, env: str, record: DeployRecord) -> None:
    """Write (overwrite) the deploy record of `env`."""
    registry.set_model_tag(model, deploy_tag(env), record.to_json())


def write_pending(
    registry: Registry,
    model: str,
    env: str,
    *,
    op: str,
    version: int | None,
    previous: int | None,
    git_sha: str,
    release: str,
    run_url: str | None,
    actor: str | None,
) -> None:
    """`promotion.<env>.pending` = {op, version, previous, git_sha, release, run_url, actor,
    time}; written BEFORE the alias write it announces."""
    value = {
        "op": op,
        "version": version,
        "previous": previous,
        "git_sha": git_sha,
        "release": release,
        "run_url": run_url,
        "actor": actor,
        "time": now_iso(),
    }
    registry.set_model_tag(model, pending_tag(env), json.dumps(value, sort_keys=True))


def read_pending(tags: dict[str, str], env: str) -> dict[str, Any] | None:
    """The pending operation on `env`, or None."""
    raw = tags.get(pending_tag(env))
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"raw": raw}


def _delete_model_tag(registry: Registry, model: str, key: str) -> None:
    # ml.registry has no delete for model tags yet (issue 18 rewrites the adapter).
    with registry_errors(f"delete tag {model} {key}"):
        registry.client.delete_registered_model_tag(model, key)


def clear_pending(registry: Registry, model: str, env: str) -> None:
    """Remove the pending record once what it announced is verified."""
    state = registry.model_state(model)
    if state is not None and pending_tag(env) in state.tags:
        _delete_model_tag(registry, model, pending_tag(env))


@dataclass(frozen=True)
class Lease:
    """`lease` = {owner, run_url, acquired, expires}."""

    owner: str
    run_url: str | None
    acquired: str
    expires: str

    def live(self, at: datetime) -> bool:
        """True until `expires`."""
        return datetime.strptime(self.expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) > at


def _read_lease(registry: Registry, model: str) -> Lease | None:
    state = registry.model_state(model)
    raw = state.tags.get(LEASE_TAG) if state else None
    if not raw:
        return None
    try:
        return Lease(**json.loads(raw))
    except (ValueError, TypeError):
        return None  # unreadable: treated as absent (it cannot name a holder)


def take_lease(
    registry: Registry, model: str, *, owner: str, run_url: str | None, ttl: float
) -> Lease:
    """Take the model's lease, or raise `LeaseError` naming the live holder.

    The same owner (a rerun of the same workflow run, or the same person on the same host)
    takes its own lease over: a deploy killed with its lease held must not block its rerun.
    What it does not guarantee: two owners that read "free" at the same instant both write; the
    read-back lets the loser see the winner and stop before it writes anything else.
    """
    now = datetime.now(UTC)
    held = _read_lease(registry, model)
    if held is not None and held.owner != owner and held.live(now):
        raise LeaseError(
            f"{model}: lease held by {held.owner} ({held.run_url or 'no run URL'}) until "
            f"{held.expires}; nothing was changed (hint: wait for it to finish; a dead holder's "
            "lease expires by itself)"
        )
    lease = Lease(
        owner=owner,
        run_url=run_url,
        acquired=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires=(now + timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    registry.set_model_tag(model, LEASE_TAG, json.dumps(asdict(lease), sort_keys=True))
    back = _read_lease(registry, model)
    if back is None or back.owner != owner:
        holder = back.owner if back else "nobody"
        raise LeaseError(f"{model}: lost the lease to {holder} while taking it; nothing changed")
    return lease


def release_lease(registry: Registry, model: str, owner: str) -> None:
    """Drop the lease if it is still ours (never another owner's)."""
    held = _read_lease(registry, model)
    if held is not None and held.owner == owner:
        _delete_model_tag(registry, model, LEASE_TAG)


def run_url_from_env() -> str | None:
    """The workflow run's URL in GitHub Actions (the same for every attempt of a run)."""
    import os

    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def actor_from_env() -> str:
    """Who deploys: GITHUB_ACTOR in Actions, else the local user."""
    import getpass
    import os

    if actor := os.environ.get("GITHUB_ACTOR"):
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def owner_from_env() -> str:
    """Who holds a lease: the workflow run (a rerun of it takes its own lease over), else the
    user on this host (a second terminal of the same person is the same owner)."""
    import socket

    if url := run_url_from_env():
        return url
    return f"{actor_from_env()}@{socket.gethostname()}"


def interrupted(tags: dict[str, str], env: str) -> str | None:
    """What `mlops promote status` should say about `env` from a model's tags: "interrupted
    deploy of release R in E ..." when a deploy (or its revert) did not finish, else None.

    Pure (reads the tags `model_state` returned), so the reconciler's status can call it.
    """
    record = read_deploy(tags, env)
    pending = read_pending(tags, env)
    if record is not None and not record.finished:
        op = "revert" if record.phase == "reverting" else "deploy"
        return (
            f"interrupted {op} of release {record.release} in {env} (phase {record.phase}, "
            f"{record.time}; previous: {record.previous.versions}); rerun `mlops deploy --env "
            f"{env} --release {record.release}` to converge"
        )
    if record is not None and record.phase == "revert-failed":
        return (
            f"failed deploy of release {record.release} in {env} whose revert was not verified "
            f"({record.error or 'no detail'}): a human must check it"
        )
    if pending is not None and pending.get("op") in ("deploy", "revert"):
        return (
            f"interrupted {pending['op']} of release {pending.get('release')} in {env} "
            f"(v{pending.get('previous')} → v{pending.get('version')})"
        )
    return None
