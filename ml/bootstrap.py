"""`mlops bootstrap`: from an empty AWS account and GitHub repository to a configured pipeline.

Four steps, each idempotent, in the order an adoption needs them (docs/adopting.md):

1. `state-bucket`  the terraform state bucket (boto3): versioning, default encryption, public
                   access block, TLS-only policy; refuses credentials of another account.
2. `codeowners`    replaces the team placeholders in .github/CODEOWNERS (commit it in a PR).
3. `github`        through `gh api`: default workflow token read-only, the OIDC subject template,
                   the environments with reviewers and a `main`-only deployment branch policy,
                   branch protection on main, and every variable and secret of
                   config/platform.yaml whose value comes from terraform or a person. First it
                   checks that every OIDC subject the roles trust (terraform outputs
                   role_subjects, aws_deploy_role_subjects) names this repository and an
                   environment the list creates, on a branch it allows.
4. `mlflow-users`  creates (or rotates) the MLflow users of config/platform.yaml through MLflow's
                   auth REST API, grants their permissions, and stores their credentials as the
                   GitHub secrets that name them.

Every step runs against a backend that either executes and logs each call or, with --dry-run,
only records it: one code path, so the dry run prints exactly what a first run would do.
Secret values are never printed (dry run or not): a call shows where the value comes from.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ml.errors import ConfigError, GitHubError, RegistryError
from ml.platform import REPOSITORY, ROOTS, Entry, MlflowUser, PlatformConfig

STEPS = ("state-bucket", "codeowners", "github", "mlflow-users")
# The GitHub App "GitHub Actions": pinning the required check to it means no other app (or a
# commit status from anyone with a token) can satisfy `status`.
GITHUB_ACTIONS_APP_ID = 15368
REPO_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
CODEOWNERS = Path(".github/CODEOWNERS")

Log = Callable[[str], None]


# --- Values that must never be printed -------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    """A secret value and where it comes from; its repr and every rendering hide the value."""

    source: str
    value: str | None = field(default=None, repr=False)

    def shown(self) -> str:
        """What a log line says instead of the value."""
        return f"<{self.source}, not shown>"


@dataclass(frozen=True)
class Call:
    """One operation bootstrap makes, rendered as one line a person could run or read."""

    system: Literal["aws", "github", "mlflow", "file"]
    method: str
    target: str
    body: Mapping[str, Any] | None = None
    secret: Secret | None = None
    secret_field: str | None = None
    note: str = ""

    def render(self) -> str:
        """The call as one line; secret values replaced by where they come from."""
        body = dict(self.body or {})
        if self.secret is not None and self.secret_field:
            body[self.secret_field] = self.secret.shown()
        if self.system == "github" and self.method == "SECRET":
            line = f"gh secret set {self.target}"
            assert self.secret is not None
            line += f"  # value: {self.secret.shown()} (read from stdin)"
        elif self.system == "github":
            line = f"gh api --method {self.method} {self.target}"
            if body:
                line += f" --input - <<< {shlex.quote(json.dumps(body, sort_keys=True))}"
        elif self.system == "aws":
            args = ", ".join(f"{k}={v!r}" for k, v in body.items())
            line = f"{self.target}.{self.method}({args})"
        elif self.system == "mlflow":
            line = f"{self.method} {self.target}"
            if body:
                line += f" {json.dumps(body, sort_keys=True)}"
        else:
            line = f"{self.method} {self.target}"
        return f"{line}  # {self.note}" if self.note and self.method != "SECRET" else line


class Recorder:
    """Calls made so far, printed as they happen."""

    def __init__(self, log: Log, dry_run: bool) -> None:
        self.calls: list[Call] = []
        self.log = log
        self.dry_run = dry_run

    def record(self, call: Call) -> None:
        """Keep and print one call."""
        self.calls.append(call)
        self.log(("[dry-run] " if self.dry_run else "") + call.render())


# --- GitHub through `gh` ---------------------------------------------------------------------


class NotFoundError(Exception):
    """A GitHub or MLflow resource does not exist (HTTP 404)."""


class GitHub:
    """`gh api` and `gh secret set`, or, in a dry run, their recording only."""

    def __init__(self, repo: str, recorder: Recorder, gh: str | None = None) -> None:
        self.repo = repo
        self.recorder = recorder
        self.gh = gh

    @classmethod
    def for_run(cls, repo: str, recorder: Recorder) -> GitHub:
        """A backend that executes through the gh CLI (must be installed) unless dry-run."""
        gh = None
        if not recorder.dry_run:
            gh = shutil.which("gh")
            if gh is None:
                raise GitHubError(
                    "the GitHub CLI `gh` is not installed: install it (https://cli.github.com) "
                    "and `gh auth login` as a repository admin, or run with --dry-run and "
                    "apply the printed calls yourself"
                )
        return cls(repo, recorder, gh)

    def api(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        note: str = "",
        placeholder: Any = None,
    ) -> Any:
        """One REST call; the parsed JSON answer (dry run: `placeholder`); NotFoundError on 404."""
        self.recorder.record(Call("github", method, path, body, note=note))
        if self.gh is None:
            return placeholder
        cmd = [
            self.gh,
            "api",
            "--method",
            method,
            path,
            "-H",
            "Accept: application/vnd.github+json",
        ]
        if body is not None:
            cmd += ["--input", "-"]
        done = subprocess.run(
            cmd,
            input=json.dumps(body) if body is not None else None,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            if "HTTP 404" in done.stderr:
                raise NotFoundError(path)
            raise GitHubError(
                f"gh api --method {method} {path} failed: {_one_line(done.stderr or done.stdout)}"
            )
        return json.loads(done.stdout) if done.stdout.strip() else None

    def set_secret(self, name: str, secret: Secret, environment: str | None) -> None:
        """`gh secret set NAME --repo R [--env E]`, value on stdin (never in argv or logs)."""
        target = f"{name} --repo {self.repo}" + (f" --env {environment}" if environment else "")
        self.recorder.record(Call("github", "SECRET", target, secret=secret))
        if self.gh is None:
            return
        if secret.value is None:
            raise ConfigError(f"no value for secret {name} ({secret.source})")
        cmd = [self.gh, "secret", "set", name, "--repo", self.repo]
        if environment:
            cmd += ["--env", environment]
        done = subprocess.run(
            cmd, input=secret.value, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise GitHubError(f"gh secret set {name} failed: {_one_line(done.stderr)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400] or "no output"


# --- Values: terraform outputs, people, bootstrap itself -------------------------------------


SecretReader = Callable[[str], Mapping[str, Any]]


@dataclass
class Values:
    """Where bootstrap finds values: terraform outputs per root, Secrets Manager secrets those
    outputs name (`read_secret`, real runs only), and the caller's environment."""

    outputs: dict[str, dict[str, Any]]
    environ: Mapping[str, str]
    bucket: str
    dry_run: bool
    read_secret: SecretReader | None = None
    missing: list[str] = field(default_factory=list)
    _secrets: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    def _human(self, name: str) -> str | None:
        if self.environ.get(name):
            return self.environ[name]
        path = self.environ.get(f"{name}_FILE")
        if path:
            try:
                return Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from exc
        return None

    def output(self, root: str, name: str) -> Any:
        """The value of one terraform output of `root`, or None."""
        found = self.outputs.get(root, {}).get(name)
        return None if found is None else found.get("value")

    def secret(self, arn: str, key: str, where: str) -> str:
        """One key of a Secrets Manager secret's JSON value (each secret read once)."""
        if self.read_secret is None:
            raise ConfigError(f"{where}: no AWS session to read Secrets Manager with")
        if arn not in self._secrets:
            self._secrets[arn] = self.read_secret(arn)
        value = self._secrets[arn].get(key)
        if not value:
            raise ConfigError(
                f"{where}: the secret has no `{key}` yet (seed it: make tf-seed-secrets ROOT=...)"
            )
        return str(value)

    def of(self, config: PlatformConfig, entry: Entry, scope: str) -> tuple[str | None, str]:
        """(value or None, where it comes from) for a terraform / state-bucket / human entry.

        A dry run never reads Secrets Manager: such a value is a placeholder (secrets are
        never shown anyway).
        """
        src = entry.source
        if src.kind == "terraform":
            root = config.root_of(entry, scope)
            assert root is not None
            label = entry.output_name()
            value = self.output(root, label)
            if src.key:
                key = scope if src.key == "environment" else src.key
                label += f"[{key}]"
                value = value.get(key) if isinstance(value, dict) else None
            where = f"terraform output {label} of {root}"
            if src.secret_key:
                where = f"key {src.secret_key} of the Secrets Manager secret in {where}"
                if value is not None:
                    value = (
                        "<read at run time>"
                        if self.dry_run
                        else self.secret(str(value), src.secret_key, where)
                    )
            if value is not None and not isinstance(value, str):
                value = json.dumps(value)
            return value, where
        if src.what == "state-bucket":
            return self.bucket, "the state bucket"
        how = f"{entry.name} or {entry.name}_FILE in your environment ({src.how})"
        return self._human(entry.name), how


def secrets_manager_reader(session: Any, region: str, recorder: Recorder) -> SecretReader:
    """Reads a secret's JSON value; each read is logged (the value never is)."""
    client = session.client("secretsmanager", region_name=region)

    def read(arn: str) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        recorder.log(f"secretsmanager.get_secret_value(SecretId={arn!r})")
        try:
            text = client.get_secret_value(SecretId=arn).get("SecretString") or "{}"
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"secret {arn}: {_one_line(str(exc))}") from exc
        return _json_object(text, f"secret {arn}", "a JSON object")

    return read


def load_outputs(
    roots: Iterable[str], outputs_dir: Path | None, dry_run: bool, log: Log
) -> dict[str, dict[str, Any]]:
    """`terraform output -json` of each root: from OUTPUTS_DIR/<root>.json, else `make tf-output`.

    A dry run without --outputs-dir reads nothing (placeholders); a real run fails on a root
    whose outputs cannot be read.
    """
    result: dict[str, dict[str, Any]] = {}
    for root in roots:
        if outputs_dir is not None:
            path = outputs_dir / f"{root}.json"
            if path.exists():
                result[root] = _parse_outputs(path.read_text(), str(path))
            elif not dry_run:
                raise ConfigError(f"{path} not found: `make -s tf-output ROOT={root} > {path}`")
            continue
        if dry_run:
            continue
        log(f"reading terraform outputs of {root}: make -s tf-output ROOT={root}")
        done = subprocess.run(
            ["make", "-s", "--no-print-directory", "tf-output", f"ROOT={root}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise ConfigError(
                f"terraform outputs of {root} unavailable ({_one_line(done.stderr)}): apply the "
                f"root first, or pass --outputs-dir with {root}.json from `terraform output -json`"
            )
        result[root] = _parse_outputs(done.stdout, f"terraform output of {root}")
    return result


def _parse_outputs(text: str, where: str) -> dict[str, Any]:
    return _json_object(text, where, "the JSON of `terraform output -json`")


def _json_object(text: str, where: str, expected: str) -> dict[str, Any]:
    """`text` parsed as a JSON object, or a ConfigError naming `where` and what was expected."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not {expected} ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not {expected}")
    return doc


# --- Step 1: the state bucket ----------------------------------------------------------------


def default_bucket(repo: str, account: str) -> str:
    """`<repo name>-tfstate-<account>`, made a valid S3 bucket name."""
    name = re.sub(r"[^a-z0-9-]+", "-", repo.split("/")[1].lower()).strip("-")
    return f"{name[:30].strip('-')}-tfstate-{account}"


class _AwsRecorder:
    """boto3 client stand-in that records calls; with a real client it also makes them."""

    def __init__(self, service: str, recorder: Recorder, client: Any | None) -> None:
        self.service = service
        self.recorder = recorder
        self.client = client

    def call(self, method: str, note: str = "", **kwargs: Any) -> Any:
        self.recorder.record(Call("aws", method, self.service, kwargs, note=note))
        if self.client is None:
            return {}
        return getattr(self.client, method)(**kwargs)


def state_bucket(
    bucket: str, account: str, region: str, recorder: Recorder, session: Any | None = None
) -> None:
    """Create (or converge) the state bucket; verify the result in a real run.

    Locking needs nothing more: terraform's S3 backend writes `<key>.tflock` (use_lockfile).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    real = not recorder.dry_run
    clients = None
    if real:
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=region)
        clients = (session.client("sts"), session.client("s3", region_name=region))
    sts = _AwsRecorder("sts", recorder, clients[0] if clients else None)
    s3 = _AwsRecorder("s3", recorder, clients[1] if clients else None)
    try:
        identity = sts.call("get_caller_identity", note=f"must be account {account}")
        if real and identity.get("Account") != account:
            raise ConfigError(
                f"the AWS credentials are for account {identity.get('Account')}, not {account}: "
                "switch profile (AWS_PROFILE) or pass the right --account"
            )
        create: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.call("create_bucket", **create)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "BucketAlreadyExists":
                raise ConfigError(
                    f"bucket name {bucket} is taken by another account: pass --bucket NAME"
                ) from exc
            if code != "BucketAlreadyOwnedByYou":
                raise
            recorder.log(f"bucket {bucket} exists already (yours): converging its settings")
        s3.call(
            "put_public_access_block",
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.call(
            "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        s3.call(
            "put_bucket_encryption",
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        s3.call("put_bucket_policy", Bucket=bucket, Policy=_tls_only_policy(bucket))
        if clients:
            _verify_bucket(clients[1], bucket)
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(f"state bucket {bucket}: {_one_line(str(exc))}") from exc


def _tls_only_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


def _verify_bucket(s3: Any, bucket: str) -> None:
    """Read the settings back: a bucket that says otherwise fails the step."""
    problems = []
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problems.append("versioning is not enabled")
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    if not all(block.values()):
        problems.append(f"public access is not fully blocked ({block})")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    if not rules:
        problems.append("no default encryption")
    if problems:
        raise ConfigError(f"state bucket {bucket}: " + "; ".join(problems))


# --- Step 2: CODEOWNERS ----------------------------------------------------------------------


@dataclass(frozen=True)
class TeamRef:
    """A reviewer: an organisation team (`org/slug`) or a user (`user:login`)."""

    key: str
    kind: Literal["Team", "User"]
    org: str
    slug: str

    @property
    def handle(self) -> str:
        """How CODEOWNERS names it."""
        return f"@{self.org}/{self.slug}" if self.kind == "Team" else f"@{self.slug}"

    @property
    def lookup(self) -> str:
        """The REST path that gives its id."""
        return (
            f"/orgs/{self.org}/teams/{self.slug}" if self.kind == "Team" else f"/users/{self.slug}"
        )


def parse_teams(config: PlatformConfig, repo: str, given: Iterable[str]) -> dict[str, TeamRef]:
    """`--team KEY=ORG/SLUG` or `KEY=user:LOGIN`; every team defaults to `<repo owner>/<key>`."""
    owner = repo.split("/")[0]
    chosen = {key: f"{owner}/{key}" for key in config.teams}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in config.teams or not value:
            raise ConfigError(
                f"--team {item!r}: use KEY=ORG/SLUG or KEY=user:LOGIN with KEY one of "
                f"{', '.join(config.teams)}"
            )
        chosen[key] = value
    refs: dict[str, TeamRef] = {}
    for key, value in chosen.items():
        if value.startswith("user:"):
            refs[key] = TeamRef(key, "User", "", value.removeprefix("user:"))
        else:
            org, _, slug = value.partition("/")
            if not org or not slug:
                raise ConfigError(f"--team {key}={value}: expected ORG/SLUG")
            refs[key] = TeamRef(key, "Team", org, slug)
    return refs


def codeowners(
    config: PlatformConfig,
    teams: Mapping[str, TeamRef],
    recorder: Recorder,
    path: Path = CODEOWNERS,
) -> None:
    """Replace each team placeholder in CODEOWNERS by the team given (a local edit to commit)."""
    text = path.read_text()
    new = text
    for key, team in config.teams.items():
        if team.placeholder in new:
            new = new.replace(team.placeholder, teams[key].handle)
            recorder.record(
                Call("file", "edit", str(path), note=f"{team.placeholder} -> {teams[key].handle}")
            )
    if new == text:
        recorder.log(f"{path}: no placeholder left, nothing to replace")
        return
    if not recorder.dry_run:
        path.write_text(new)
        recorder.log(f"{path} rewritten: commit it through a pull request")


# --- Step 3: GitHub --------------------------------------------------------------------------


def github(
    config: PlatformConfig,
    gh: GitHub,
    teams: Mapping[str, TeamRef],
    values: Values,
) -> None:
    """Settings, environments, branch protection, then every terraform/human/bucket value."""
    repo = f"/repos/{gh.repo}"
    gh.api(
        "PUT",
        f"{repo}/actions/permissions/workflow",
        {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": False},
        note="GITHUB_TOKEN read-only unless a job asks for more",
    )
    gh.api(
        "PUT",
        f"{repo}/actions/oidc/customization/sub",
        {"use_default": False, "include_claim_keys": list(config.oidc_subject_claims)},
        note="sub = repo:OWNER/NAME:environment:ENV:ref:refs/heads/main",
    )
    ids: dict[str, Any] = {}
    for key in sorted({k for env in config.environments.values() for k in env.reviewers}):
        team = teams[key]
        found = gh.api("GET", team.lookup, placeholder={"id": f"<id of {team.handle}>"})
        ids[key] = found["id"]
    for name, env in config.environments.items():
        quoted = urllib.parse.quote(name, safe="")
        body: dict[str, Any] = {
            "wait_timer": 0,
            "reviewers": [{"type": teams[k].kind, "id": ids[k]} for k in env.reviewers] or None,
            "deployment_branch_policy": {
                "protected_branches": False,
                "custom_branch_policies": True,
            },
        }
        if env.reviewers:
            body["prevent_self_review"] = True
        gh.api("PUT", f"{repo}/environments/{quoted}", body, note=env.description)
        policies = f"{repo}/environments/{quoted}/deployment-branch-policies"
        listed = gh.api("GET", policies, placeholder={"branch_policies": []}) or {}
        existing = {p["name"]: p["id"] for p in listed.get("branch_policies", [])}
        for branch in env.branches:
            if branch not in existing:
                gh.api("POST", policies, {"name": branch, "type": "branch"})
        for other, policy_id in existing.items():
            if other not in env.branches:
                gh.api("DELETE", f"{policies}/{policy_id}", note=f"{name} deploys from main only")
    bp = config.branch_protection
    gh.api(
        "PUT",
        f"{repo}/branches/{bp.branch}/protection",
        {
            "required_status_checks": {
                "strict": True,
                "checks": [
                    {"context": c, "app_id": GITHUB_ACTIONS_APP_ID} for c in bp.required_checks
                ],
            },
            "enforce_admins": True,
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": True,
                "require_code_owner_reviews": bp.require_code_owner_reviews,
                "required_approving_review_count": bp.required_approving_reviews,
            },
            "restrictions": None,
            "required_conversation_resolution": True,
            "allow_force_pushes": False,
            "allow_deletions": False,
        },
        note="merges need `status` (ci) and a code owner's review",
    )
    set_values(config, gh, values)


def set_values(config: PlatformConfig, gh: GitHub, values: Values) -> None:
    """Every variable and every terraform/human secret, in each of its scopes.

    MLflow users' secrets belong to the mlflow-users step, which makes their passwords.
    """
    for kind, entry in config.entries():
        if entry.source.what == "mlflow-user":
            continue
        for scope in entry.scopes:
            value, where = values.of(config, entry, scope)
            if value is None:
                label = f"{kind} {entry.name} ({scope}): {where}"
                if entry.optional:
                    gh.recorder.log(f"skipped optional {label}")
                    continue
                values.missing.append(label)
                if not values.dry_run:
                    continue
            environment = None if scope == REPOSITORY else scope
            if kind == "secret":
                gh.set_secret(entry.name, Secret(where, value), environment)
            else:
                shown = value if value is not None else f"<{where}>"
                _set_variable(gh, entry.name, shown, environment)


def _set_variable(gh: GitHub, name: str, value: str, environment: str | None) -> None:
    """Update the variable, or create it when GitHub says it does not exist."""
    base = f"/repos/{gh.repo}" + (
        f"/environments/{urllib.parse.quote(environment, safe='')}" if environment else "/actions"
    )
    body = {"name": name, "value": value}
    try:
        gh.api("PATCH", f"{base}/variables/{name}", body, note="POST if it does not exist")
    except NotFoundError:
        gh.api("POST", f"{base}/variables", body)


# --- Step 4: MLflow users --------------------------------------------------------------------


class MlflowAdmin:
    """MLflow's auth REST API with the admin's basic-auth credentials (urllib, no mlflow import)."""

    def __init__(
        self, tracking_uri: str, username: str, password: str | None, recorder: Recorder
    ) -> None:
        self.uri = tracking_uri.rstrip("/")
        self.recorder = recorder
        self._auth = (
            "Basic " + b64encode(f"{username}:{password}".encode()).decode() if password else None
        )

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
        data = json.dumps(payload).encode() if method != "GET" else None
        request = urllib.request.Request(  # noqa: S310 (the registry URL terraform output)
            f"{self.uri}{path}",
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": self._auth} if self._auth else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if exc.code == 404:
                raise NotFoundError(path) from exc
            if exc.code == 400 and "RESOURCE_ALREADY_EXISTS" in text:
                raise FileExistsError(path) from exc
            raise RegistryError(
                f"MLflow {method} {path}: HTTP {exc.code} {_one_line(text)}"
                + (
                    " (are MLFLOW_ADMIN_USERNAME/PASSWORD an admin's?)"
                    if exc.code in (401, 403)
                    else ""
                )
            ) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise RegistryError(f"MLflow at {self.uri} unreachable: {exc}") from exc
        return json.loads(raw) if raw.strip() else {}


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


# --- The whole run ---------------------------------------------------------------------------


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
    try:
        doc = yaml.safe_load(promotions.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{promotions}: cannot read the model names ({exc})") from exc
    return sorted((doc.get("models") or {}).keys())


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
            import boto3

            aws_session = boto3.session.Session(region_name=options.region)
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
            _check_subjects(config, outputs, options.repo, options.dry_run, log)
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


PULL_REQUEST_CONTEXT = "pull_request:ref:refs/pull/*/merge"
_ENV_CONTEXT = re.compile(r"^environment:([^:]+):ref:refs/heads/(.+)$")


def role_subjects(outputs: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, OIDC subject) of every GitHub role terraform made: the platform's `role_subjects`
    map and each environment root's `aws_deploy_role_subjects`."""
    found: list[tuple[str, str]] = []
    platform = (outputs.get("platform", {}).get("role_subjects") or {}).get("value") or {}
    for role, subjects in sorted(platform.items()):
        found += [(str(role), str(s)) for s in subjects or []]
    for root in ROOTS[1:]:
        deploy = (outputs.get(root, {}).get("aws_deploy_role_subjects") or {}).get("value")
        found += [(f"deploy-{root}", str(s)) for s in deploy or []]
    return found


def subject_problems(
    config: PlatformConfig, outputs: Mapping[str, Mapping[str, Any]], repo: str
) -> list[str]:
    """Roles whose trust the GitHub side cannot satisfy, one line each (empty: they agree).

    A subject must name this repository and either an environment of config/platform.yaml on a
    branch that environment deploys from, or the pull-request form (the plan roles). A role
    trusting an environment the list lacks could never be assumed: bootstrap would not create
    the environment, so no job could name it.
    """
    problems: list[str] = []
    prefix = f"repo:{repo}:"
    for role, subject in role_subjects(outputs):
        if not subject.startswith(prefix):
            problems.append(
                f"role {role} trusts {subject}: not repository {repo} "
                "(terraform variable github_repository)"
            )
            continue
        context = subject[len(prefix) :]
        if context == PULL_REQUEST_CONTEXT:
            continue
        match = _ENV_CONTEXT.match(context)
        if match is None:
            problems.append(
                f"role {role} trusts {subject}: neither an environment on a branch nor "
                "a pull request (the subject template is repo, context, ref)"
            )
            continue
        env, branch = match.groups()
        if env not in config.environments:
            problems.append(
                f"role {role} trusts environment {env}, which config/platform.yaml does not "
                "list: add it there (bootstrap creates the environments it lists)"
            )
        elif branch not in config.environments[env].branches:
            problems.append(
                f"role {role} trusts environment {env} on {branch}, but {env} deploys from "
                f"{list(config.environments[env].branches)} only"
            )
    return problems


def _check_subjects(
    config: PlatformConfig,
    outputs: Mapping[str, Mapping[str, Any]],
    repo: str,
    dry_run: bool,
    log: Log,
) -> None:
    """A real run stops before its first GitHub write when a role's trust cannot be met."""
    problems = subject_problems(config, outputs, repo)
    if not problems:
        if role_subjects(outputs):
            log("OIDC subjects of every role match the environments of config/platform.yaml")
        return
    message = "the roles' OIDC trust does not match config/platform.yaml:\n" + "\n".join(
        f"  - {p}" for p in problems
    )
    if dry_run:
        log("a real run would stop here: " + message)
        return
    raise ConfigError(message + "\nnothing was changed on GitHub")


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
