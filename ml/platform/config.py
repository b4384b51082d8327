"""config/platform.yaml, validated: the one list of GitHub configuration.

Every Actions variable and secret a workflow reads is declared once, per scope (the repository
or one GitHub environment), with where its value comes from. Four consumers share it, so they
cannot drift apart: `mlops preflight` (ml/platform/preflight.py), `mlops bootstrap`
(ml/platform/bootstrap/), the workflow check (ml/platform/workflows.py) and the table in
docs/adopting.md (ml/platform/docs_table.py, `make platform-docs`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.config_file import load_yaml, validate
from ml.errors import ConfigError

DEFAULT_FILE = Path("config/platform.yaml")
REPOSITORY = "repository"
ROOTS = ("platform", "staging", "production")
NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")

Kind = Literal["variable", "secret"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(_Frozen):
    """A team named in CODEOWNERS and as environment reviewers (a placeholder until bootstrap)."""

    placeholder: str = Field(pattern=r"^@[\w.-]+/[\w.-]+$")
    description: str


class Environment(_Frozen):
    """A GitHub environment: the terraform root its values come from and who approves it."""

    description: str
    root: Literal["platform", "staging", "production"]
    reviewers: tuple[str, ...] = ()
    branches: tuple[str, ...] = ("main",)


class BranchProtection(_Frozen):
    """What bootstrap sets on the default branch."""

    branch: str = "main"
    required_checks: tuple[str, ...]
    required_approving_reviews: int = Field(ge=1)
    require_code_owner_reviews: bool = True


class MlflowUser(_Frozen):
    """An MLflow basic-auth user bootstrap creates.

    Either bootstrap generates its password (`username` given; the GitHub secrets sourcing the
    user carry its credentials), or terraform made its credentials (`secret_output`: an output
    of each of `roots` holding the ARN of a Secrets Manager secret {username, password}).
    """

    username: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9._-]*$")
    description: str
    model_permission: Literal["READ", "USE", "EDIT", "MANAGE"] | None = None
    experiment_permission: Literal["READ", "USE", "EDIT", "MANAGE"] | None = None
    secret_output: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    roots: tuple[Literal["platform", "staging", "production"], ...] = ()

    @model_validator(mode="after")
    def _one_source(self) -> MlflowUser:
        if (self.username is None) == (self.secret_output is None):
            raise ValueError("an MLflow user has a username or a secret_output, not both")
        if self.secret_output and not self.roots:
            raise ValueError("a secret_output user names the roots that output it")
        return self


class Source(_Frozen):
    """Where a value comes from (see the header of config/platform.yaml)."""

    kind: Literal["terraform", "bootstrap", "human"]
    root: Literal["platform", "staging", "production", "environment"] | None = None
    output: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    # The output is a map: take this key (`environment`: the name of the scope being set).
    key: str | None = None
    # The output is the ARN of a Secrets Manager secret: take this key of its JSON value.
    secret_key: str | None = None
    what: Literal["state-bucket", "mlflow-user"] | None = None
    user: str | None = None
    field: Literal["username", "password"] | None = None
    how: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Source:
        if self.kind == "terraform" and self.root is None:
            raise ValueError("a terraform source names its root (platform, staging, ...)")
        if self.kind == "bootstrap" and self.what is None:
            raise ValueError("a bootstrap source says what it is (state-bucket, mlflow-user)")
        if self.what == "mlflow-user" and (self.user is None or self.field is None):
            raise ValueError("an mlflow-user source names the user and the field")
        if self.kind == "human" and not self.how:
            raise ValueError("a human source says how to obtain the value (`how`)")
        return self


class Entry(_Frozen):
    """One variable or secret name, in every scope that holds it."""

    name: str
    scopes: tuple[str, ...] = Field(min_length=1)
    description: str
    source: Source
    required_by: tuple[str, ...] = Field(min_length=1)
    optional: bool = False
    write: bool = False
    maps_to: str | None = None

    @model_validator(mode="after")
    def _name(self) -> Entry:
        if not NAME_RE.match(self.name) or self.name.startswith("GITHUB_"):
            raise ValueError(
                f"{self.name!r} is not a valid GitHub variable/secret name "
                "(upper case letters, digits, _; not starting with GITHUB_)"
            )
        return self

    def output_name(self) -> str:
        """The terraform output that provides the value: `output`, else lower_snake_case."""
        return self.source.output or self.name.lower()


class RetrainData(_Frozen):
    """Where retrain's dispatch inputs may take data from (retrain.yml's data-uri and
    data-reference): the committed snapshot always, anything else only if listed here.

    Whoever can dispatch retrain chooses the data the next production candidate learns from;
    an arbitrary URL would let one person train it on anything. The list is reviewed like code.
    """

    paths: tuple[str, ...] = ("data/",)
    https_hosts: tuple[str, ...] = ()
    s3_buckets: tuple[str, ...] = ()

    def refusal(self, uri: str) -> str | None:
        """Why `uri` is not allowed (None when it is): names the rule and the fix."""
        if not uri or uri.startswith("models:/"):
            return None  # the snapshot (the workflow's default), or a registered version
        fix = (
            "use the committed snapshot (leave it empty), or add the source to retrain_data "
            "in config/platform.yaml by pull request"
        )
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme == "https":
            host = (parsed.hostname or "").lower()
            if parsed.username or parsed.password or parsed.port not in (None, 443):
                return f"{uri!r}: credentials or a port in a data URL are not allowed; {fix}"
            if host not in {h.lower() for h in self.https_hosts}:
                allowed = ", ".join(self.https_hosts) or "none"
                return f"{uri!r}: host {host!r} is not an allowed https host ({allowed}); {fix}"
            return None
        if parsed.scheme == "s3":
            if parsed.netloc not in self.s3_buckets or not parsed.path.strip("/"):
                allowed = ", ".join(self.s3_buckets) or "none"
                return (
                    f"{uri!r}: bucket {parsed.netloc!r} is not an allowed bucket ({allowed}); {fix}"
                )
            return None
        if parsed.scheme:
            return f"{uri!r}: scheme {parsed.scheme}:// is not allowed (https or s3 only); {fix}"
        path = Path(uri)
        if path.is_absolute() or ".." in path.parts:
            return f"{uri!r}: only a path inside the repository is allowed; {fix}"
        if not any(uri.startswith(prefix) for prefix in self.paths):
            return f"{uri!r}: not under {', '.join(self.paths)}; {fix}"
        return None


class Runners(_Frozen):
    """Where the jobs that talk to the registry or a deployed service run.

    `in-vpc`: AWS CodeBuild-hosted GitHub Actions runners in the platform VPC (terraform:
    modules/codebuild_runner), so MLflow's load balancer stays internal. `public`: the runner
    label `public_runs_on` against MLflow's public HTTPS endpoint (basic auth, and an allow-list
    that must hold that runner's egress addresses).
    """

    registry: Literal["in-vpc", "public"]
    codebuild_project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,149}$")
    public_runs_on: str = "ubuntu-latest"

    def runs_on(self) -> str:
        """The `runs-on:` of a job that talks to the registry or a deployed service."""
        if self.registry == "in-vpc":
            run = "${{ github.run_id }}-${{ github.run_attempt }}"
            return f"codebuild-{self.codebuild_project}-{run}"
        return self.public_runs_on


class PlatformConfig(_Frozen):
    """config/platform.yaml, validated."""

    version: Literal[1]
    teams: dict[str, Team]
    environments: dict[str, Environment]
    branch_protection: BranchProtection
    oidc_subject_claims: tuple[str, ...]
    mlflow_users: dict[str, MlflowUser]
    retrain_data: RetrainData = RetrainData()
    runners: Runners
    variables: tuple[Entry, ...]
    secrets: tuple[Entry, ...]

    @model_validator(mode="after")
    def _consistent(self) -> PlatformConfig:
        scopes = {REPOSITORY, *self.environments}
        seen: set[tuple[str, str]] = set()
        for kind, entry in self.entries():
            for scope in entry.scopes:
                if scope not in scopes:
                    raise ValueError(
                        f"{entry.name}: unknown scope {scope!r} (one of {sorted(scopes)})"
                    )
                if (scope, entry.name) in seen:
                    raise ValueError(f"{entry.name} is listed twice in scope {scope}")
                seen.add((scope, entry.name))
                if entry.source.root == "environment" and scope == REPOSITORY:
                    raise ValueError(
                        f"{entry.name}: `root: environment` needs an environment scope"
                    )
            if entry.source.what == "mlflow-user":
                user = self.mlflow_users.get(entry.source.user or "")
                if user is None or user.username is None:
                    raise ValueError(
                        f"{entry.name}: {entry.source.user!r} is not an MLflow user whose "
                        "password bootstrap generates"
                    )
            if entry.source.secret_key and kind != "secret":
                raise ValueError(f"{entry.name}: a Secrets Manager value belongs in a secret")
            if kind == "variable" and (entry.write or entry.maps_to):
                raise ValueError(f"{entry.name}: `write` and `maps_to` are for secrets")
            if entry.write:
                # A repository secret is readable by a workflow on any branch, and by pull
                # requests of this repository: state-changing ones live in main-only
                # environments, whose jobs no other ref can start.
                for scope in entry.scopes:
                    branches = self.environments[scope].branches if scope != REPOSITORY else None
                    if branches != ("main",):
                        raise ValueError(
                            f"{entry.name}: a write secret belongs only in environments whose "
                            f"deployment branch policy is main only, not in {scope}"
                        )
        by_name: dict[str, tuple[Kind, str | None, bool]] = {}
        for kind, entry in self.entries():
            shape = (kind, entry.maps_to, entry.write)
            if by_name.setdefault(entry.name, shape) != shape:
                raise ValueError(
                    f"{entry.name}: entries of one name agree on kind, maps_to and write"
                )
        for name, env in self.environments.items():
            unknown = set(env.reviewers) - set(self.teams)
            if unknown:
                raise ValueError(f"environment {name}: unknown reviewer team(s) {sorted(unknown)}")
        return self

    def entries(self) -> list[tuple[Kind, Entry]]:
        """Every entry with its kind, variables first, in file order."""
        return [("variable", e) for e in self.variables] + [("secret", e) for e in self.secrets]

    def scopes(self) -> list[str]:
        """`repository` and every environment, in file order."""
        return [REPOSITORY, *self.environments]

    def workflows(self) -> list[str]:
        """Every workflow some entry is required by."""
        return sorted({w for _, e in self.entries() for w in e.required_by})

    def root_of(self, entry: Entry, scope: str) -> str | None:
        """The terraform root whose output provides `entry` in `scope` (None if not terraform)."""
        root = entry.source.root
        if entry.source.kind != "terraform" or root is None:
            return None
        return self.environments[scope].root if root == "environment" else root

    def required(
        self, scope: str, workflows: Iterable[str] = (), *, include_optional: bool = False
    ) -> list[Requirement]:
        """What a job in `scope` sees: repository names plus the environment's own.

        With `workflows`, only names one of them reads; optional names only on request.
        """
        if scope not in self.scopes():
            raise ConfigError(
                f"unknown scope {scope!r}: use one of {', '.join(self.scopes())} "
                f"(config/platform.yaml)"
            )
        wanted = set(workflows)
        unknown = wanted - set(self.workflows())
        if unknown:
            raise ConfigError(
                f"no entry of config/platform.yaml is required by {sorted(unknown)}: "
                f"known workflows are {', '.join(self.workflows())}"
            )
        visible = {REPOSITORY, scope}
        out: list[Requirement] = []
        for kind, entry in self.entries():
            if wanted and not wanted & set(entry.required_by):
                continue
            if entry.optional and not include_optional:
                continue
            out += [Requirement(kind, entry.name, s, entry) for s in entry.scopes if s in visible]
        return out


@dataclass(frozen=True)
class Requirement:
    """One name that must exist in one scope."""

    kind: Kind
    name: str
    scope: str
    entry: Entry = field(compare=False, repr=False)


def load_platform(path: Path = DEFAULT_FILE) -> PlatformConfig:
    """Read and validate config/platform.yaml; a `ConfigError` names the file, the line and the
    key of every problem."""
    root = load_yaml(
        path,
        missing=(
            f"{path}: cannot read it (no such file; hint: run from the repository root or pass "
            "--file)"
        ),
    )
    return validate(
        PlatformConfig,
        root,
        path,
        hint="see the header of config/platform.yaml and docs/adopting.md",
    )


def describe_source(entry: Entry, scope: str | None = None) -> str:
    """A short, human reading of where a value comes from."""
    src = entry.source
    if src.kind == "terraform":
        where: str = f"{src.root} root" if src.root != "environment" else "the environment's root"
        if scope and src.root == "environment":
            where = f"{scope.removeprefix('infrastructure-')} root"
        output = f"`{entry.output_name()}`"
        if src.key:
            output += f"[{scope if scope and src.key == 'environment' else src.key}]"
        if src.secret_key:
            return (
                f"key `{src.secret_key}` of the Secrets Manager secret of output {output} ({where})"
            )
        return f"terraform output {output} ({where})"
    if src.what == "state-bucket":
        return "mlops bootstrap (the state bucket it creates)"
    if src.what == "mlflow-user":
        return f"mlops bootstrap (MLflow user `{src.user}`, {src.field})"
    return f"a person: {src.how}"


def check_data_sources(config: PlatformConfig, uris: Iterable[str]) -> None:
    """Refuse every retrain data source the list does not allow (ConfigError, all at once)."""
    problems = [p for p in (config.retrain_data.refusal(u) for u in uris) if p]
    if problems:
        raise ConfigError(
            "retrain refused its data source before reading a byte: " + "; ".join(problems)
        )
