"""The deploy record `deploy.<env>`: where the deploy of a release to an environment stands.

Written *before* anything moves (with the state it replaces: alias versions, task definition,
release) and after every step, so an interrupted deploy is told apart from an out-of-band change,
resumed from the state it replaced, and reverted to it. The other records a deploy leaves are the
promotions engine's (`ml.promotions.records`, one schema): `promotion.<env>.pending` (op
"deploy" / "revert", with the release) around every alias move, which `mlops promote status`
reports as interrupted, and the `lease` around the whole transaction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ml.errors import RegistryError
from ml.promotions.records import pending_operation
from ml.registry import Registry

# Phases in order; the last three end a deploy (docs/contracts.md#deploy-records).
PHASES = (
    "started",
    "task-registered",
    "rolling-out",
    "smoke",
    "moving-alias",
    "reverting",
    "done",
    "reverted",
    "revert-failed",
)
TERMINAL = frozenset({"done", "reverted", "revert-failed"})


def deploy_tag(env: str) -> str:
    """Model tag of the deploy record of `env` (`staging`, `production`, `mlflow`)."""
    return f"deploy.{env}"


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


def interrupted(tags: dict[str, str], env: str) -> str | None:
    """What `mlops promote status` should say about `env` from a model's tags: "interrupted
    deploy of release R in E ..." when a deploy (or its revert) did not finish, else None.

    Pure (reads the tags `model_state` returned), so the reconciler's status can call it.
    """
    record = read_deploy(tags, env)
    pending = pending_operation(tags, env)
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
    if pending is not None and pending.op in ("deploy", "revert"):
        return f"interrupted {pending.describe(env)}"
    return None
