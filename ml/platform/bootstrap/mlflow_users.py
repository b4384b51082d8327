"""Step `mlflow-users`: create (or rotate) the MLflow users of config/platform.yaml through
MLflow's auth API, grant their permissions, and store their credentials as the GitHub secrets
that name them."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from ml.adapters.mlflow_admin import MlflowAdminApi
from ml.errors import ConfigError, NotFoundError
from ml.platform.bootstrap.recorder import Call, Recorder, Secret
from ml.platform.bootstrap.repository import GitHub
from ml.platform.bootstrap.values import Values
from ml.platform.config import REPOSITORY, MlflowUser, PlatformConfig


class MlflowAdmin:
    """The admin API as bootstrap uses it: every call recorded (a dry run only records), secret
    fields filled in only on the wire."""

    def __init__(
        self, tracking_uri: str, username: str, password: str | None, recorder: Recorder
    ) -> None:
        self.api = MlflowAdminApi(tracking_uri, username, password)
        self.uri = self.api.uri
        self.recorder = recorder

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        secret: Secret | None = None,
        secret_field: str | None = None,
        note: str = "",
        placeholder: Any = None,
    ) -> Any:
        """One call; the JSON answer (dry run: `placeholder`); NotFoundError on 404."""
        self.recorder.record(
            Call("mlflow", method, f"{self.uri}{path}", body, secret, secret_field, note)
        )
        if self.recorder.dry_run:
            return placeholder
        payload = dict(body or {})
        if secret is not None and secret_field:
            payload[secret_field] = secret.value
        return self.api.request(method, path, payload)


def ensure_mlflow_user(
    admin: MlflowAdmin,
    username: str,
    password: Secret,
    grants: Iterable[tuple[str, str, str]],
) -> None:
    """Create `username` (or set its new password), then make each (type, id, permission) hold."""
    try:
        exists = admin.request(
            "GET", f"/api/2.0/mlflow/users/get?username={urllib.parse.quote(username)}"
        )
    except NotFoundError:
        exists = None
    method, path, note = (
        ("PATCH", "/api/2.0/mlflow/users/update-password", "rotates the password")
        if exists
        else ("POST", "/api/2.0/mlflow/users/create", "")
    )
    admin.request(
        method,
        path,
        {"username": username},
        secret=password,
        secret_field="password",  # noqa: S106 (a field name, not a password)
        note=note,
    )
    for resource_type, resource_id, permission in grants:
        query = urllib.parse.urlencode(
            {"username": username, "resource_type": resource_type, "resource_id": resource_id}
        )
        current = admin.request("GET", f"/api/3.0/mlflow/users/permissions/get?{query}") or {}
        if current.get("permission") == permission:
            continue
        grant = {
            "username": username,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "permission": permission,
        }
        try:
            admin.request("POST", "/api/3.0/mlflow/users/permissions/grant", grant)
        except FileExistsError:
            # A grant at another level exists: replace it.
            revoke = {k: grant[k] for k in ("username", "resource_type", "resource_id")}
            admin.request("POST", "/api/3.0/mlflow/users/permissions/revoke", revoke)
            admin.request("POST", "/api/3.0/mlflow/users/permissions/grant", grant)


def user_grants(
    config: PlatformConfig, key: str, models: Iterable[str], experiment_id: str | None
) -> list[tuple[str, str, str]]:
    """The (resource type, id, permission) a user of config/platform.yaml must hold."""
    user = config.mlflow_users[key]
    grants: list[tuple[str, str, str]] = []
    if user.model_permission:
        grants += [("registered_model", m, user.model_permission) for m in models]
    if user.experiment_permission and experiment_id:
        grants.append(("experiment", experiment_id, user.experiment_permission))
    return grants


def mlflow_users(
    config: PlatformConfig,
    admin: MlflowAdmin,
    gh: GitHub | None,
    models: Iterable[str],
    experiment: str,
    passwords: Mapping[str, str] | None = None,
    values: Values | None = None,
) -> dict[str, tuple[str, str | None]]:
    """Create/rotate every MLflow user, grant its permissions, store its credentials in GitHub.

    Users with a username get a password generated per run (a run is a rotation; `passwords`
    fixes one, for tests) and their GitHub secrets; users whose credentials terraform made
    (`secret_output`) are created from those, once per root (needs `values`). Returns
    {user key (`key/root` for the latter): (username, password)}; passwords are None in a
    dry run.
    """
    models = list(models)
    try:
        found = admin.request(
            "GET",
            "/api/2.0/mlflow/experiments/get-by-name?"
            + urllib.parse.urlencode({"experiment_name": experiment}),
            note="the training experiment, if it exists yet",
        )
        experiment_id = (found or {}).get("experiment", {}).get("experiment_id")
    except NotFoundError:
        experiment_id = None
    made: dict[str, tuple[str, str | None]] = {}
    # Bootstrap's own users: a terraform-made user of the same name would take over (and rotate)
    # that identity, e.g. an API reading the registry as production's writer.
    generated = {u.username: k for k, u in config.mlflow_users.items() if u.username}
    for key, user in config.mlflow_users.items():
        grants = user_grants(config, key, models, experiment_id)
        if user.username is None:
            for root, (username, password) in _terraform_credentials(user, admin, values).items():
                if username in generated:
                    raise ConfigError(
                        f"the MLflow user of {root}'s output {user.secret_output} is named "
                        f"{username!r}, which is bootstrap's {generated[username]!r} user: give "
                        "that secret another username (put-secret-value), then run this again"
                    )
                ensure_mlflow_user(admin, username, password, grants)
                made[f"{key}/{root}"] = (username, password.value)
            continue
        value = (passwords or {}).get(key)
        if value is None and not admin.recorder.dry_run:
            value = secrets.token_urlsafe(32)
        password = Secret(f"generated password of MLflow user {user.username}", value)
        ensure_mlflow_user(admin, user.username, password, grants)
        made[key] = (user.username, value)
        if gh is None:
            continue
        for _, entry in config.entries():
            src = entry.source
            if src.what != "mlflow-user" or src.user != key:
                continue
            secret = (
                password
                if src.field == "password"
                else Secret(f"username of MLflow user {user.username}", user.username)
            )
            for scope in entry.scopes:
                gh.set_secret(entry.name, secret, None if scope == REPOSITORY else scope)
    return made


def _terraform_credentials(
    user: MlflowUser, admin: MlflowAdmin, values: Values | None
) -> dict[str, tuple[str, Secret]]:
    """{root: (username, password)} of a user whose secret each root's terraform created."""
    found: dict[str, tuple[str, Secret]] = {}
    output = user.secret_output
    assert output is not None
    for root in user.roots:
        where = f"the Secrets Manager secret in terraform output {output} of {root}"
        arn = values.output(root, output) if values else None
        if values is None or (arn is None and not values.dry_run):
            admin.recorder.log(f"skipped MLflow user of {where}: no such output")
            continue
        if values.dry_run:
            found[root] = (f"<username in {where}>", Secret(f"password in {where}"))
            continue
        username = values.secret(str(arn), "username", where)
        found[root] = (
            username,
            Secret(f"password in {where}", values.secret(str(arn), "password", where)),
        )
    return found
