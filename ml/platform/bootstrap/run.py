"""`mlops bootstrap`'s whole run: the options, the steps in order, and the checks a real run
makes before its first GitHub write."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.adapters import aws
from ml.config_file import load_yaml
from ml.errors import ConfigError
from ml.platform.bootstrap.codeowners import codeowners, parse_teams
from ml.platform.bootstrap.mlflow_users import MlflowAdmin, mlflow_users
from ml.platform.bootstrap.oidc import check_subjects
from ml.platform.bootstrap.recorder import Call, Log, Recorder
from ml.platform.bootstrap.repository import GitHub, github
from ml.platform.bootstrap.state_bucket import default_bucket, state_bucket
from ml.platform.bootstrap.values import Values, load_outputs, secrets_manager_reader
from ml.platform.config import ROOTS, PlatformConfig

STEPS = ("state-bucket", "codeowners", "github", "mlflow-users")
REPO_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
ACCOUNT_RE = re.compile(r"^\d{12}$")


@dataclass
class Options:
    """What `mlops bootstrap` was asked to do."""

    repo: str
    account: str
    region: str
    dry_run: bool = False
    steps: tuple[str, ...] = STEPS
    outputs_dir: Path | None = None
    bucket: str | None = None
    teams: tuple[str, ...] = ()
    promotions: Path = Path("promotions.yaml")
    experiment: str = "credit-risk"

    def validate(self) -> None:
        """Refuse malformed arguments before anything is called."""
        if not REPO_RE.match(self.repo):
            raise ConfigError(f"--repo {self.repo!r}: expected OWNER/NAME")
        if not ACCOUNT_RE.match(self.account):
            raise ConfigError(f"--account {self.account!r}: expected the 12-digit AWS account id")
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", self.region):
            raise ConfigError(f"--region {self.region!r}: expected an AWS region such as eu-west-1")
        unknown = set(self.steps) - set(STEPS)
        if unknown:
            raise ConfigError(f"--step {sorted(unknown)}: steps are {', '.join(STEPS)}")


def model_names(promotions: Path) -> list[str]:
    """The models promotions.yaml names (the registry writers and the trainer get EDIT on each)."""
    doc = load_yaml(
        promotions,
        missing=f"{promotions}: cannot read the model names (no such file; hint: run mlops "
        "bootstrap from the repository root)",
    )
    models = doc.get("models") if isinstance(doc, dict) else None
    return sorted(str(name) for name in models) if isinstance(models, dict) else []


def run(
    config: PlatformConfig,
    options: Options,
    log: Log,
    environ: Mapping[str, str] | None = None,
    aws_session: Any | None = None,
    passwords: Mapping[str, str] | None = None,
) -> list[Call]:
    """Run the selected steps in order; return every call made (or, dry run, to be made)."""
    options.validate()
    env = os.environ if environ is None else environ
    recorder = Recorder(log, options.dry_run)
    bucket = options.bucket or default_bucket(options.repo, options.account)
    steps = [s for s in STEPS if s in options.steps]
    teams = parse_teams(config, options.repo, options.teams)
    gh = GitHub.for_run(options.repo, recorder) if {"github", "mlflow-users"} & set(steps) else None
    needs_outputs = list(ROOTS) if {"github", "mlflow-users"} & set(steps) else []
    outputs = load_outputs(needs_outputs, options.outputs_dir, options.dry_run, log)
    reader = None
    if needs_outputs and not options.dry_run:
        if aws_session is None:
            aws_session = aws.session(options.region)
        reader = secrets_manager_reader(aws_session, options.region, recorder)
    values = Values(outputs, env, bucket, options.dry_run, reader)
    for step in steps:
        log(f"== {step}")
        if step == "state-bucket":
            state_bucket(bucket, options.account, options.region, recorder, aws_session)
        elif step == "codeowners":
            codeowners(config, teams, recorder)
        elif step == "github":
            assert gh is not None
            check_subjects(config, outputs, options.repo, options.dry_run, log)
            _check_values_first(config, values)
            github(config, gh, teams, values)
        else:
            assert gh is not None
            admin = _mlflow_admin(env, values, recorder)
            mlflow_users(
                config,
                admin,
                gh,
                model_names(options.promotions),
                options.experiment,
                passwords,
                values,
            )
    if values.missing:
        log("not set (no value yet):\n" + "\n".join(f"  - {m}" for m in values.missing))
    log(
        f"{len(recorder.calls)} calls"
        + (" listed; dry run: nothing was changed" if options.dry_run else " made")
    )
    return recorder.calls


def _mlflow_admin(env: Mapping[str, str], values: Values, recorder: Recorder) -> MlflowAdmin:
    """The registry and its admin: MLFLOW_TRACKING_URI / MLFLOW_ADMIN_* when set, else the
    platform root's outputs (the admin's credentials from the secret it names)."""
    uri = env.get("MLFLOW_TRACKING_URI") or values.output("platform", "mlflow_tracking_uri")
    if not uri:
        if not values.dry_run:
            raise ConfigError(
                "no MLflow URI: apply the platform root (output mlflow_tracking_uri) "
                "or set MLFLOW_TRACKING_URI"
            )
        uri = "<terraform output mlflow_tracking_uri of platform>"
    username = env.get("MLFLOW_ADMIN_USERNAME")
    password = env.get("MLFLOW_ADMIN_PASSWORD")
    if not password and not values.dry_run:
        arn = values.output("platform", "mlflow_admin_secret_arn")
        if not arn:
            raise ConfigError(
                "no MLflow admin: set MLFLOW_ADMIN_PASSWORD, or apply the platform root "
                "(output mlflow_admin_secret_arn names the secret that holds it)"
            )
        where = "the MLflow admin secret (terraform output mlflow_admin_secret_arn of platform)"
        username = values.secret(str(arn), "username", where)
        password = values.secret(str(arn), "password", where)
    return MlflowAdmin(str(uri), username or "admin", password, recorder)


def _check_values_first(config: PlatformConfig, values: Values) -> None:
    """A real run stops before its first GitHub write when a required value has no source yet."""
    if values.dry_run:
        return
    missing = []
    for kind, entry in config.entries():
        if entry.source.what == "mlflow-user" or entry.optional:
            continue
        for scope in entry.scopes:
            try:
                value, where = values.of(config, entry, scope)
            except ConfigError as exc:  # e.g. a secret that is not there yet: list it too
                value, where = None, str(exc)
            if value is None:
                missing.append(f"{kind} {entry.name} ({scope}): {where}")
    if missing:
        raise ConfigError(
            f"{len(missing)} value(s) have no source yet; nothing was changed on GitHub:\n"
            + "\n".join(f"  - {m}" for m in missing)
        )
