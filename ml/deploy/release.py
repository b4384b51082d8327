"""A release: the immutable unit CD promotes (serve image digest, mlflow image digest, model
name → version, git SHA, the scan of those digests), like Kargo's Freight moving through Stages.

Stored as the model tag `release.<id>` on the served model, so the one registry both
environments read also holds what each of them verified. The content never changes once created
(creating an existing id with other content is an error); what grows is its history:
`verified.<env>` (staging: smoke + e2e, recorded by `mlops release verify`; production: the
deploy's own smoke test), `withdrawn.<env>` (a break-glass rollback moved away from it),
`rescans` (a later scan of the same digests) and `approvals` (who approved its production job).

Integrity: model tags can be rewritten by every identity with EDIT on the model (the release and
staging jobs' MLflow users among them). Each release is sealed at creation: `digest` is the
SHA-256 of its sealed part (content, scan, `prev`), and `prev` is the digest of the release
created before it, a chain `verify_chain` checks. CD passes the digest `release create` printed
to the production job as a job output (which no MLflow user can write), and production refuses a
release whose record no longer hashes to it, or a broken chain.

Over 500 lines on purpose: the content, its history and the seal that binds them are one object,
read and written together; the deploy records are ml/deploy/records.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
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


class ScanRecord(BaseModel):
    """The vulnerability scan of a release's digests (`mlops images scan`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str = "trivy"
    tool_version: str
    db_updated_at: str | None = None
    time: str
    # image reference (by digest) -> blocking findings (HIGH/CRITICAL with a fix, not accepted)
    images: dict[str, list[str]]

    @property
    def passed(self) -> bool:
        """No blocking finding in any image."""
        return not any(self.images.values())

    def covers(self, image: str | None) -> bool:
        """Whether `image` (a digest reference) was scanned."""
        return image is None or image in self.images


class Release(BaseModel):
    """One release; `content()` is what may never change, `sealed()` what its digest covers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    git_sha: str
    serve_image: str
    mlflow_image: str | None = None
    models: dict[str, int]
    created: str
    scan: ScanRecord | None = None
    prev: str | None = None
    digest: str | None = None
    verified: dict[str, Verification] = Field(default_factory=dict)
    withdrawn: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rescans: list[ScanRecord] = Field(default_factory=list)
    approvals: list[dict[str, Any]] = Field(default_factory=list)

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

    def sealed(self) -> dict[str, Any]:
        """What the digest covers: the content, the scan at creation and the chain link."""
        scan = self.scan.model_dump(mode="json") if self.scan else None
        return {**self.content(), "scan": scan, "prev": self.prev, "created": self.created}

    def compute_digest(self) -> str:
        """SHA-256 of `sealed()` in canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(self.sealed(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def latest_scan(self) -> ScanRecord | None:
        """The newest scan: a rescan, else the one at creation."""
        found = [s for s in (self.scan, *self.rescans) if s is not None]
        return max(found, key=lambda s: s.time) if found else None

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
    scan: ScanRecord | None = None,
) -> Release:
    """A new release value (not stored, not sealed); bad input is a `ReleaseError` naming the
    field."""
    try:
        return Release(
            id=release_id,
            git_sha=git_sha,
            serve_image=serve_image,
            mlflow_image=mlflow_image,
            models=models,
            created=now_iso(),
            scan=scan,
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
    if release.scan is not None:
        for image in (release.serve_image, release.mlflow_image):
            if not release.scan.covers(image):
                raise ReleaseError(
                    f"release {release.id}: the scan does not cover {image} (hint: `mlops images "
                    "scan` over the digests `mlops images push` wrote)"
                )
    sealed_before = [r for r in list_all(registry, model) if r.digest]
    prev = sealed_before[-1].digest if sealed_before else None
    release = release.model_copy(update={"prev": prev})
    release = release.model_copy(update={"digest": release.compute_digest()})
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
    problems = verify_chain(list_all(registry, model))
    if problems:
        raise ReleaseError(
            "release records failed the integrity check, nothing recorded: " + "; ".join(problems)
        )
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


def verify_chain(found: list[Release]) -> list[str]:
    """Integrity problems of the release records (oldest first); empty: intact.

    Flags a record that no longer hashes to its digest (rewritten after creation), a link to a
    digest no release has (a predecessor deleted or rewritten), and an unsealed record created
    after sealed ones (one written by hand, not by `release create`).
    """
    problems: list[str] = []
    digests = {r.digest for r in found if r.digest}
    sealed_seen = False
    for r in found:
        if r.digest is None:
            if sealed_seen:
                problems.append(
                    f"release {r.id} has no digest but was created after sealed releases "
                    "(not written by `mlops release create`)"
                )
            continue
        sealed_seen = True
        if r.compute_digest() != r.digest:
            problems.append(
                f"release {r.id}: the record does not hash to its digest {r.digest[:19]}... "
                "(rewritten after creation)"
            )
        if r.prev is not None and r.prev not in digests:
            problems.append(
                f"release {r.id}: its predecessor {r.prev[:19]}... is missing or was rewritten"
            )
    return problems


def require_intact(
    registry: Registry, model: str, release: Release, expected_digest: str | None
) -> None:
    """Refuse a release whose record was tampered with: its digest, the digest the run that
    created it handed on (`expected_digest`, a job output), and the chain of all releases."""
    if release.digest is None:
        raise ReleaseError(
            f"release {release.id} is not sealed (no digest): production takes only releases "
            "`mlops release create` sealed (hint: a new commit makes a new release)"
        )
    problems = verify_chain(list_all(registry, model))
    if expected_digest and release.digest != expected_digest:
        problems.insert(
            0,
            f"release {release.id} has digest {release.digest[:19]}..., but the run that "
            f"created it recorded {expected_digest[:19]}...",
        )
    if problems:
        raise ReleaseError(
            "release records failed the integrity check: " + "; ".join(problems) + " (nothing "
            "was deployed; a human must find who rewrote the registry's release tags)"
        )


def require_scan(release: Release, max_age_hours: float, now: datetime | None = None) -> None:
    """Refuse a release without a passing scan of its digests, or whose newest scan is older
    than `max_age_hours` (new CVEs appear every day)."""
    scan = release.latest_scan()
    hint = f"(hint: `mlops images scan --release {release.id}` rescans the release's digests)"
    if scan is None:
        raise ReleaseError(f"release {release.id} has no scan record; production refuses {hint}")
    for image in (release.serve_image, release.mlflow_image):
        if not scan.covers(image):
            raise ReleaseError(f"release {release.id}: its scan does not cover {image} {hint}")
    if not scan.passed:
        found = "; ".join(f"{img}: {', '.join(f)}" for img, f in scan.images.items() if f)
        raise ReleaseError(
            f"release {release.id}: the scan of {scan.time} found HIGH/CRITICAL vulnerabilities "
            f"with a fix: {found} (fix them in a new release, or accept one in "
            ".trivyignore.yaml with a statement and an expiry)"
        )
    scanned = datetime.fromisoformat(scan.time.replace("Z", "+00:00"))
    age = ((now or datetime.now(UTC)) - scanned).total_seconds() / 3600
    if age > max_age_hours:
        raise ReleaseError(
            f"release {release.id}: its newest scan ({scan.time}) is {age:.0f} h old, more than "
            f"DEPLOY_SCAN_MAX_AGE_HOURS={max_age_hours:g} {hint}"
        )


def add_rescan(registry: Registry, model: str, release_id: str, scan: ScanRecord) -> Release:
    """Append a later scan of the release's digests to its history."""
    current = get(registry, model, release_id)
    for image in (current.serve_image, current.mlflow_image):
        if not scan.covers(image):
            raise ReleaseError(f"release {release_id}: the scan does not cover {image}")
    updated = current.model_copy(update={"rescans": [*current.rescans, scan]})
    _store(registry, model, updated)
    return updated


def add_approvals(
    registry: Registry, model: str, release_id: str, approvals: list[dict[str, Any]]
) -> Release:
    """Record who approved a production job of this release (idempotent per approval)."""
    current = get(registry, model, release_id)
    known = {json.dumps(a, sort_keys=True) for a in current.approvals}
    new = [a for a in approvals if json.dumps(a, sort_keys=True) not in known]
    if not new:
        return current
    updated = current.model_copy(update={"approvals": [*current.approvals, *new]})
    _store(registry, model, updated)
    return updated


def refuse_superseded(
    registry: Registry,
    model: str,
    env: str,
    release: Release,
    history: Callable[[], list[str]],
) -> None:
    """`SupersededError` when `env` already runs a release whose commit is newer on `history`
    (first-parent commits, newest first; read only when another release runs there) than
    `release`'s: an approval given late never steps the environment back. A commit missing from
    the history cannot be ranked and supersedes nothing."""
    from ml.errors import SupersededError

    state = registry.model_state(model)
    deployed = records.read_deploy(state.tags if state else {}, env)
    if deployed is None or deployed.release == release.id or deployed.phase != "done":
        return
    try:
        running = get(registry, model, deployed.release)
    except ReleaseError:
        return
    rank = {sha: i for i, sha in enumerate(history())}
    mine, theirs = rank.get(release.git_sha), rank.get(running.git_sha)
    if mine is not None and theirs is not None and theirs < mine:
        raise SupersededError(
            f"release {release.id} ({release.git_sha[:12]}) is superseded: {env} already runs "
            f"release {running.id} ({running.git_sha[:12]}), a newer commit; nothing deployed"
        )


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


def eligible(release: Release, env: str) -> bool:
    """May `env` take `release` without being asked for it by name?

    Never a release withdrawn from `env` (a break-glass moved away from it); production only a
    release staging verified (smoke + e2e recorded); the MLflow service only one with an mlflow
    image.
    """
    if env in release.withdrawn:
        return False
    if env == "mlflow":
        return release.mlflow_image is not None
    return env != "production" or "staging" in release.verified


def newest(registry: Registry, model: str, env: str, given: Release, history: list[str]) -> Release:
    """The release `env` should run when a run asks for `given`: `given`, or a newer one.

    Why: CD's deploy jobs queue per environment, and a job may start after a newer merge's job
    (GitHub replaces a pending job with a newer one, but does not order jobs that queue close
    together; a production approval may be given hours later). The newest release wins, so a
    late job never moves an environment back to an older commit.

    Args:
        registry: The one registry.
        model: The served model carrying the release records.
        env: staging, production or mlflow.
        given: The release of the run asking.
        history: Commits newest first: `git rev-list --first-parent origin/main`. A release is
            newer than another when its commit comes first. A release whose commit is not in
            it is never preferred to `given` (nothing says it is newer).

    Returns:
        The eligible release (`eligible`) whose commit is newest, `given` when none is newer,
        or what `env` runs now (phase done) when that is newer still: then the deploy is a
        no-op instead of a step back. A newer release whose last deploy to `env` failed and
        was reverted is not picked again by a job that asked for another one.
    """
    rank = {sha: i for i, sha in enumerate(history)}
    if given.git_sha not in rank:
        return given
    best, best_rank = given, rank[given.git_sha]
    state = registry.model_state(model)
    deployed = records.read_deploy(state.tags if state else {}, env)
    running = deployed.release if deployed is not None and deployed.phase == "done" else None
    failed = (
        deployed.release
        if deployed is not None and deployed.phase in ("reverted", "revert-failed")
        else None
    )
    for other in list_all(registry, model):
        position = rank.get(other.git_sha)
        if position is None or position >= best_rank or other.id == failed:
            continue
        if other.id == running or eligible(other, env):
            best, best_rank = other, position
    return best
