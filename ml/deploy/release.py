"""A release: the immutable unit CD promotes (serve image digest, mlflow image digest, model
name → version, git SHA), like Kargo's Freight moving through Stages.

Stored as the model tag `release.<id>` on the served model (CONTRACTS.md), so the one registry
both environments read also holds what each of them verified. The content never changes once
created (creating an existing id with other content is an error); what grows is its history:
`verified.<env>` (staging: smoke + e2e, recorded by `mlops release verify`; production: the
deploy's own smoke test) and `withdrawn.<env>` (a break-glass rollback moved away from it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ml.deploy import records
from ml.errors import ReleaseError
from ml.promotions.records import now_iso
from ml.registry import Registry

_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
_DIGEST_REF = re.compile(r"^[^@\s]+/[^@\s]+@sha256:[0-9a-f]{64}$")
TAG_PREFIX = "release."


def release_tag(release_id: str) -> str:
    """Model tag holding release `release_id`."""
    return f"{TAG_PREFIX}{release_id}"


class Verification(BaseModel):
    """A release passed its checks in one environment."""

    model_config = ConfigDict(frozen=True, extra="allow")

    time: str
    run_url: str | None = None
    checks: list[str] = Field(default_factory=list)


class Release(BaseModel):
    """One release; `content()` is what may never change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    git_sha: str
    serve_image: str
    mlflow_image: str | None = None
    models: dict[str, int]
    created: str
    verified: dict[str, Verification] = Field(default_factory=dict)
    withdrawn: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                f"release id {value!r}: 1-64 of [0-9A-Za-z._-], starting with a letter or digit"
            )
        return value

    @field_validator("serve_image", "mlflow_image")
    @classmethod
    def _by_digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST_REF.match(value):
            raise ValueError(
                f"{value!r} is not addressed by digest (hint: <repository>@sha256:<64 hex>, "
                "as `mlops images push` prints)"
            )
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("a release names at least one model version")
        for name, version in value.items():
            if version < 1:
                raise ValueError(f"{name}: version {version} must be positive")
        return value

    def content(self) -> dict[str, Any]:
        """The immutable part: what was built and which model versions it serves."""
        return self.model_dump(include={"id", "git_sha", "serve_image", "mlflow_image", "models"})

    def to_json(self) -> str:
        """Tag value."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True)


def _parse(raw: str, release_id: str) -> Release:
    try:
        return Release.model_validate_json(raw)
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"]
        raise ReleaseError(f"release {release_id}: unreadable record ({msg})") from None


def build(
    release_id: str,
    git_sha: str,
    serve_image: str,
    mlflow_image: str | None,
    models: dict[str, int],
) -> Release:
    """A new release value (not stored); bad input is a `ReleaseError` naming the field."""
    try:
        return Release(
            id=release_id,
            git_sha=git_sha,
            serve_image=serve_image,
            mlflow_image=mlflow_image,
            models=models,
            created=now_iso(),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReleaseError(f"release {release_id}: {where}: {first['msg']}") from None


def create(registry: Registry, model: str, release: Release) -> tuple[Release, bool]:
    """Store `release` on `model`; idempotent for the same content, an error for other content.

    Every named model version must exist and be READY: a release is what staging will deploy.

    Returns:
        (the stored release, True when it was written now).
    """
    state = registry.model_state(model)
    if state is None:
        raise ReleaseError(f"{model} is not a registered model (hint: SERVE_MODEL_NAME)")
    existing = state.tags.get(release_tag(release.id))
    if existing:
        stored = _parse(existing, release.id)
        if stored.content() != release.content():
            diff = {
                k: (stored.content()[k], v)
                for k, v in release.content().items()
                if stored.content()[k] != v
            }
            raise ReleaseError(
                f"release {release.id} exists with other content (releases are immutable): "
                + "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in diff.items())
                + " (hint: a new commit makes a new release)"
            )
        return stored, False
    for name, version in release.models.items():
        info = registry.get_version(name, version)
        if info is None or info.status != "READY":
            found = "missing" if info is None else info.status
            raise ReleaseError(f"release {release.id}: {name} v{version} is {found}, not READY")
    registry.set_model_tag(model, release_tag(release.id), release.to_json())
    return release, True


def get(registry: Registry, model: str, release_id: str) -> Release:
    """The stored release, or `ReleaseError` naming the ones that exist."""
    state = registry.model_state(model)
    raw = state.tags.get(release_tag(release_id)) if state else None
    if not raw:
        known = [r.id for r in list_all(registry, model)][-5:]
        raise ReleaseError(
            f"release {release_id} not found on {model} (latest: {known or 'none'}; hint: "
            "`mlops release create` after `mlops images push`)"
        )
    return _parse(raw, release_id)


def list_all(registry: Registry, model: str) -> list[Release]:
    """Every release on `model`, oldest first."""
    state = registry.model_state(model)
    if state is None:
        return []
    found = [
        _parse(raw, key[len(TAG_PREFIX) :])
        for key, raw in state.tags.items()
        if key.startswith(TAG_PREFIX)
    ]
    return sorted(found, key=lambda r: (r.created, r.id))


def _store(registry: Registry, model: str, release: Release) -> None:
    registry.set_model_tag(model, release_tag(release.id), release.to_json())


def verify(
    registry: Registry,
    model: str,
    release_id: str,
    env: str,
    *,
    checks: list[str],
    run_url: str | None,
) -> Release:
    """Record that `release_id` passed `checks` in `env`; it must be what `env` runs now.

    Refused unless the environment's deploy record says this release is deployed and its
    smoke test passed (phase done): a verification of something else is worthless.
    """
    release = get(registry, model, release_id)
    state = registry.model_state(model)
    deployed = records.read_deploy(state.tags if state else {}, env)
    if deployed is None or deployed.release != release_id or deployed.phase != "done":
        now = "nothing" if deployed is None else f"{deployed.release} ({deployed.phase})"
        raise ReleaseError(
            f"release {release_id} is not what {env} runs (deploy.{env}: {now}); refusing to "
            f"record it as verified (hint: `mlops deploy --env {env} --release {release_id}`)"
        )
    if env in release.verified:
        return release
    verified = {
        **release.verified,
        env: Verification(time=now_iso(), run_url=run_url, checks=checks),
    }
    updated = release.model_copy(update={"verified": verified})
    _store(registry, model, updated)
    return updated


def require_verified(release: Release, env: str, deployed: records.DeployRecord | None) -> None:
    """Refuse a release that `env` did not verify, naming what is missing."""
    if env in release.verified:
        return
    where = (
        "staging has never deployed it"
        if deployed is None or deployed.release != release.id
        else f"staging deployed it (phase {deployed.phase}) but no e2e verification was recorded"
    )
    raise ReleaseError(
        f"release {release.id} is not verified in {env}: missing verified.{env} "
        f"(smoke + e2e); {where} (hint: deploy it to {env}, run the e2e job, then "
        f"`mlops release verify --env {env} --release {release.id}`; or pass "
        "--allow-skip-staging, which is recorded)"
    )


def refuse_withdrawn(release: Release, env: str) -> None:
    """A break-glass rollback moved `env` away from this release: never deploy it there again."""
    if env in release.withdrawn:
        why = release.withdrawn[env]
        raise ReleaseError(
            f"release {release.id} was withdrawn from {env} by a break-glass rollback at "
            f"{why.get('time')} ({why.get('reason') or 'no reason given'}); a fix is a new "
            "commit, hence a new release"
        )


def mark_production_verified(
    registry: Registry, model: str, release: Release, run_url: str | None
) -> Release:
    """Record the first successful production deploy (the break-glass candidates)."""
    if "production" in release.verified:
        return release
    current = get(registry, model, release.id)  # re-read: verify may have run meanwhile
    verified = {
        **current.verified,
        "production": Verification(time=now_iso(), run_url=run_url, checks=["smoke"]),
    }
    updated = current.model_copy(update={"verified": verified})
    _store(registry, model, updated)
    return updated


def withdraw(
    registry: Registry, model: str, release_id: str, env: str, why: dict[str, Any]
) -> None:
    """Mark `release_id` withdrawn from `env` (break-glass moved away from it)."""
    current = get(registry, model, release_id)
    updated = current.model_copy(update={"withdrawn": {**current.withdrawn, env: why}})
    _store(registry, model, updated)


def previous_verified(registry: Registry, model: str, current: str | None) -> Release:
    """The release production ran before `current`: verified there, not withdrawn, newest."""
    candidates = [
        r
        for r in list_all(registry, model)
        if r.id != current and "production" in r.verified and "production" not in r.withdrawn
    ]
    if not candidates:
        raise ReleaseError(
            f"{model}: no earlier release verified in production to go back to (current: "
            f"{current or 'none'}); hint: `mlops rollback {model} --pr` for a promotion PR"
        )
    return max(candidates, key=lambda r: r.verified["production"].time)
