"""`mlops bootstrap`: the dry-run call list, a real run through `gh`, the state bucket on moto.

GitHub cannot be reached from here, so the real-run test puts a stand-in `gh` executable first
on PATH; it records argv and stdin and answers like `gh api` (JSON on stdout, "HTTP 404" on
stderr with exit 1). Everything on the AWS side runs against a moto server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import ConfigError, NotFoundError
from ml.platform.bootstrap import codeowners, mlflow_users, oidc
from ml.platform.bootstrap import run as bootstrap_run
from ml.platform.bootstrap.recorder import Recorder
from ml.platform.bootstrap.values import Values
from ml.platform.config import REPOSITORY, load_platform
from ml.platform.workflows import workflow_reads
from tests.fixtures.services import MotoServer, start_moto_server, stop_moto_server

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_platform(ROOT / "config" / "platform.yaml")
REPO, ACCOUNT, REGION = "acme/credit-risk", "123456789012", "eu-west-1"
# Values that must never appear in any output, argv or log.
API_TOKEN = "tok-NEVER-PRINT-{root}"
# Split so this file holds no key-shaped block for the repository's own secret scan.
PEM = "-----BEGIN " + "PRIVATE KEY-----\nNEVERPRINTPEM\n-----END " + "PRIVATE KEY-----\n"
VAR_RE = re.compile(
    r"gh api --method PATCH /repos/acme/credit-risk/"
    r"(?:environments/([\w-]+)|actions)/variables/(\w+) "
)
AMBIENT = ("MLFLOW_TRACKING_URI", "MLFLOW_ADMIN_USERNAME", "MLFLOW_ADMIN_PASSWORD", "GH_TOKEN")
SECRET_RE = re.compile(r"gh secret set (\w+) --repo acme/credit-risk(?: --env ([\w-]+))?")


def write_outputs(out: Path, arns: dict[str, str] | None = None) -> Path:
    """`terraform output -json` of the three roots, with every output the list names.

    A secret's output is the ARN of a Secrets Manager secret (`arns` maps "root/output" to a
    real one, e.g. on moto); a map output (`key`) holds one entry per scope.
    """
    arns = arns or {}
    out.mkdir(exist_ok=True)
    per_root: dict[str, dict[str, Any]] = {"platform": {}, "staging": {}, "production": {}}

    def put(root: str, name: str, value: Any) -> None:
        per_root[root][name] = {"value": value, "type": "string", "sensitive": False}

    for _, entry in CONFIG.entries():
        for scope in entry.scopes:
            root = CONFIG.root_of(entry, scope)
            if root is None:
                continue
            name = entry.output_name()
            if entry.source.key:
                per_root[root].setdefault(name, {"value": {}})["value"][scope] = f"{root}:{scope}"
            elif entry.source.secret_key:
                put(
                    root,
                    name,
                    arns.get(f"{root}/{name}", f"arn:aws:secretsmanager:x:{root}-{name}"),
                )
            else:
                put(root, name, f"{root}:{entry.name}")
    for root in ("staging", "production"):
        arn = arns.get(f"{root}/mlflow_reader_secret_arn", f"arn:aws:secretsmanager:x:{root}-r")
        put(root, "mlflow_reader_secret_arn", arn)
    put("platform", "mlflow_admin_secret_arn", "arn:aws:secretsmanager:x:admin")
    for root, doc in per_root.items():
        (out / f"{root}.json").write_text(json.dumps(doc))
    return out


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    return write_outputs(tmp_path / "outputs")


@pytest.fixture
def human(tmp_path: Path) -> dict[str, str]:
    pem = tmp_path / "app.pem"
    pem.write_text(PEM)
    return {"PROMOTION_APP_ID": "Iv23liAPP", "PROMOTION_APP_PRIVATE_KEY_FILE": str(pem)}


def _dry_run(outputs: Path, human: dict[str, str], *extra: str) -> str:
    args = ["bootstrap", "--repo", REPO, "--account", ACCOUNT, "--region", REGION, "--dry-run"]
    # The caller's own registry settings must not leak into the plan (None unsets).
    env = {**human, "PATH": "/nonexistent", **dict.fromkeys(AMBIENT)}
    result = CliRunner().invoke(app, [*args, "--outputs-dir", str(outputs), *extra], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _set_names(output: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(variables, secrets) set by the listed calls, as (scope, name)."""
    variables = {(m.group(1) or REPOSITORY, m.group(2)) for m in VAR_RE.finditer(output)}
    secrets = {(m.group(2) or REPOSITORY, m.group(1)) for m in SECRET_RE.finditer(output)}
    return variables, secrets


def _listed(kind: str, *, optional: bool = True) -> set[tuple[str, str]]:
    return {
        (scope, e.name)
        for k, e in CONFIG.entries()
        if k == kind and (optional or not e.optional)
        for scope in e.scopes
    }


def test_dry_run_sets_exactly_the_names_of_the_list(outputs: Path, human: dict[str, str]) -> None:
    # When the dry run lists the calls for acme/credit-risk in account 123456789012
    out = _dry_run(outputs, human)

    # Then every variable and secret of the list is set in each of its scopes, and nothing else
    variables, secrets = _set_names(out)
    # (no webhook URL, drift logs, Pushgateway or monitoring role given: skipped, and said so)
    assert variables == _listed("variable", optional=False)
    assert secrets == _listed("secret", optional=False)
    assert "skipped optional secret NOTIFY_WEBHOOK_URL (repository)" in out
    assert "skipped optional variable DRIFT_LOGS (repository)" in out
    assert "skipped optional variable AWS_MONITORING_ROLE_ARN (monitoring)" in out
    # And the calls cover every name the workflows read, but the optional ones not given
    reads = workflow_reads(ROOT / ".github" / "workflows")
    optional = {e.name for _, e in CONFIG.entries() if e.optional}
    for workflow, read in reads.items():
        names = {name for _, name in read} - optional
        assert names <= {n for _, n in variables | secrets}, workflow
    # And nothing secret is printed, while variables show their values
    assert "NEVER-PRINT" not in out
    assert "NEVERPRINTPEM" not in out
    assert '"value": "platform:AWS_REGION"' in out
    assert "dry run: nothing was changed" in out


def test_dry_run_sets_exactly_what_all_workflows_read(outputs: Path, human: dict[str, str]) -> None:
    out = _dry_run(outputs, human)
    variables, secrets = _set_names(out)
    reads = set().union(*workflow_reads(ROOT / ".github" / "workflows").values())
    optional = {e.name for _, e in CONFIG.entries() if e.optional}
    assert {n for _, n in reads} - optional == {n for _, n in variables | secrets}


def test_dry_run_creates_protected_environments_and_main_protection(
    outputs: Path, human: dict[str, str]
) -> None:
    out = _dry_run(outputs, human, "--team", "model-approvers=acme/ml-approvers")
    lines = out.splitlines()

    def body(prefix: str) -> dict[str, Any]:
        (line,) = [ln for ln in lines if prefix in ln]
        return json.loads(line.split("<<< ", 1)[1].split("'")[1])

    prod = body("--method PUT /repos/acme/credit-risk/environments/production ")
    assert prod["reviewers"] == [{"type": "Team", "id": "<id of @acme/ml-approvers>"}]
    assert prod["prevent_self_review"] is True
    assert prod["deployment_branch_policy"] == {
        "protected_branches": False,
        "custom_branch_policies": True,
    }
    assert body("environments/staging ")["reviewers"] is None
    infra = body("environments/infrastructure-production ")
    assert infra["reviewers"] == [{"type": "Team", "id": "<id of @acme/platform>"}]
    for env in CONFIG.environments:
        assert body(f"environments/{env}/deployment-branch-policies ") == {
            "name": "main",
            "type": "branch",
        }
    protection = body("/branches/main/protection ")
    assert protection["required_status_checks"]["checks"] == [
        {"context": "status", "app_id": 15368}
    ]
    assert protection["required_pull_request_reviews"]["require_code_owner_reviews"] is True
    assert body("/actions/oidc/customization/sub ") == {
        "use_default": False,
        "include_claim_keys": ["repo", "context", "ref"],
    }
    assert "GET /orgs/acme/teams/ml-approvers" in out
    assert (
        "edit .github/CODEOWNERS  # @credit-risk-org/model-approvers -> @acme/ml-approvers" in out
    )
    # The state bucket: in the account, the region, versioned, encrypted, private, TLS only
    bucket = "credit-risk-tfstate-123456789012"
    assert f"s3.create_bucket(Bucket='{bucket}', CreateBucketConfiguration=" in out
    assert "{'LocationConstraint': 'eu-west-1'}" in out
    for call in ("put_bucket_versioning", "put_bucket_encryption", "put_public_access_block"):
        assert f"s3.{call}(Bucket='{bucket}'" in out
    assert "aws:SecureTransport" in out


def test_dry_run_of_the_mlflow_users_grants_and_hides_passwords(
    outputs: Path, human: dict[str, str]
) -> None:
    out = _dry_run(outputs, human, "--step", "mlflow-users")
    uri = "platform:MLFLOW_TRACKING_URI"
    for user in ("ci-reader", "releaser", "staging-deployer", "deployer", "trainer"):
        assert f"POST {uri}/api/2.0/mlflow/users/create" in out
        assert f'"password": "<generated password of MLflow user {user}, not shown>"' in out
    grant = (
        '"permission": "EDIT", "resource_id": "credit-risk", "resource_type": "registered_model"'
    )
    for writer in ("releaser", "staging-deployer", "deployer"):
        assert f'{grant}, "username": "{writer}"' in out
    assert f'{grant}, "username": "ci-reader"' not in out
    # Each registry-writing environment gets its own user: production's only in production
    for env, user in (("release", "releaser"), ("staging", "staging-deployer"),
                      ("production", "deployer")):  # fmt: skip
        (line,) = [
            ln for ln in out.splitlines()
            if f"gh secret set MLFLOW_DEPLOYER_PASSWORD --repo {REPO} --env {env} " in ln
        ]  # fmt: skip
        assert f"<generated password of MLflow user {user}, not shown>" in line
    _, secrets = _set_names(out)
    assert secrets == {
        (s, n)
        for s, n in _listed("secret")
        if n.startswith(("MLFLOW_READER", "MLFLOW_DEPLOYER", "MLFLOW_TRAINER"))
    }


# --- a real run through a stand-in `gh` -------------------------------------------------------

FAKE_GH = '''#!{python}
"""Records argv and stdin; answers like `gh api`."""
import json, os, sys
args = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["FAKE_GH_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": args, "stdin": stdin}}) + "\\n")
path = args[3] if args[:2] == ["api", "--method"] else ""
if "/teams/" in path:
    print(json.dumps({{"id": 42, "slug": path.rsplit("/", 1)[1]}}))
elif path.endswith("/environments/retrain/deployment-branch-policies") and args[2] == "GET":
    print(json.dumps({{"branch_policies": [{{"id": 9, "name": "dev", "type": "branch"}}]}}))
elif path.endswith("/deployment-branch-policies") and args[2] == "GET":
    print(json.dumps({{"branch_policies": []}}))
elif args[2:3] == ["PATCH"] and path.endswith("/variables/TF_STATE_BUCKET"):
    print("gh: Not Found (HTTP 404)", file=sys.stderr)
    sys.exit(1)
else:
    print("{{}}")
'''


@pytest.fixture
def fake_gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "gh.log"
    log.write_text("")
    monkeypatch.setenv("FAKE_GH_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _gh_calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_real_run_goes_through_gh_with_secrets_only_on_stdin(
    tmp_path: Path, human: dict[str, str], fake_gh: Path, aws_env: dict[str, str]
) -> None:
    # Given the API tokens in Secrets Manager (moto), named by the stacks' outputs
    sm = boto3.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    arns = {
        f"{root}/api_token_secret_arn": sm.create_secret(
            Name=f"api-token-{root}-{uuid.uuid4().hex[:6]}",
            SecretString=json.dumps({"token": API_TOKEN.format(root=root)}),
        )["ARN"]
        for root in ("staging", "production")
    }
    outputs = write_outputs(tmp_path / "outputs", arns)
    lines: list[str] = []
    options = bootstrap_run.Options(
        REPO, ACCOUNT, REGION, steps=("github",), outputs_dir=outputs, bucket="state-b"
    )

    # When bootstrap sets up GitHub for real (through the stand-in gh)
    bootstrap_run.run(CONFIG, options, lines.append, environ=human)

    calls = _gh_calls(fake_gh)
    argv_text = json.dumps([c["argv"] for c in calls])
    log_text = "\n".join(lines)
    # Secret values travel on stdin only: never in argv, never in the log
    for secret in ("NEVER-PRINT", "NEVERPRINTPEM"):
        assert secret not in argv_text
        assert secret not in log_text
    secret_sets = {
        (c["argv"][2], c["argv"][-1] if "--env" in c["argv"] else REPOSITORY): c["stdin"]
        for c in calls
        if c["argv"][:2] == ["secret", "set"]
    }
    assert secret_sets[("SERVICE_API_TOKEN", "production")] == "tok-NEVER-PRINT-production"
    assert secret_sets[("PROMOTION_APP_PRIVATE_KEY", "bot")] == PEM
    # Variables: JSON on stdin; a 404 on update creates the variable instead
    api = [(c["argv"][2], c["argv"][3], c["stdin"]) for c in calls if c["argv"][0] == "api"]
    assert (
        "POST",
        "/repos/acme/credit-risk/actions/variables",
        json.dumps({"name": "TF_STATE_BUCKET", "value": "state-b"}),
    ) in api
    # Reviewers by the team id GitHub returned; other deployment branches removed
    prod = next(s for m, p, s in api if m == "PUT" and p.endswith("/environments/production"))
    assert json.loads(prod)["reviewers"] == [{"type": "Team", "id": 42}]
    assert (
        "DELETE",
        "/repos/acme/credit-risk/environments/retrain/deployment-branch-policies/9",
        "",
    ) in api


def test_a_real_run_changes_nothing_when_a_value_has_no_source(
    outputs: Path, fake_gh: Path, aws_env: dict[str, str]
) -> None:
    options = bootstrap_run.Options(REPO, ACCOUNT, REGION, steps=("github",), outputs_dir=outputs)
    with pytest.raises(ConfigError) as err:
        bootstrap_run.run(CONFIG, options, lambda _: None, environ={})
    message = str(err.value)
    assert "nothing was changed on GitHub" in message
    assert "variable PROMOTION_APP_ID (repository)" in message
    assert "secret PROMOTION_APP_PRIVATE_KEY (bot)" in message
    assert _gh_calls(fake_gh) == []


def test_a_real_run_without_outputs_of_a_root_says_how_to_get_them(
    outputs: Path, human: dict[str, str], fake_gh: Path, aws_env: dict[str, str]
) -> None:
    (outputs / "staging.json").unlink()
    options = bootstrap_run.Options(REPO, ACCOUNT, REGION, steps=("github",), outputs_dir=outputs)
    with pytest.raises(
        ConfigError, match=r"staging.json not found: `make -s tf-output ROOT=staging"
    ):
        bootstrap_run.run(CONFIG, options, lambda _: None, environ=human)


def test_without_gh_a_real_run_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(
        app,
        ["bootstrap", "--repo", REPO, "--account", ACCOUNT, "--region", REGION, "--step", "github"],
    )
    assert result.exit_code == 12
    assert "the GitHub CLI `gh` is not installed" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", "acme", "--account", ACCOUNT, "--region", REGION], "expected OWNER/NAME"),
        (["--repo", REPO, "--account", "123", "--region", REGION], "12-digit AWS account"),
        (["--repo", REPO, "--account", ACCOUNT, "--region", "west"], "AWS region"),
        (
            [*("--repo", REPO, "--account", ACCOUNT, "--region", REGION), "--step", "dns"],
            "steps are",
        ),
        (
            [*("--repo", REPO, "--account", ACCOUNT, "--region", REGION), "--team", "x=a/b"],
            "KEY one of",
        ),
    ],
)
def test_bad_arguments_are_refused_before_any_call(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bootstrap", *args, "--dry-run"])
    assert result.exit_code == 2
    assert message in result.output
    assert "[dry-run]" not in result.output


def test_codeowners_placeholders_are_replaced_once(tmp_path: Path) -> None:
    path = tmp_path / "CODEOWNERS"
    shutil.copy(ROOT / ".github" / "CODEOWNERS", path)
    teams = codeowners.parse_teams(CONFIG, REPO, ["platform=user:alice"])
    lines: list[str] = []
    recorder = Recorder(lines.append, dry_run=False)

    codeowners.codeowners(CONFIG, teams, recorder, path)
    codeowners.codeowners(CONFIG, teams, recorder, path)

    text = path.read_text()
    assert "@credit-risk-org" not in text
    assert "/promotions.yaml               @acme/model-approvers" in text
    assert "/infra/                        @alice" in text
    assert len(recorder.calls) == 2  # one edit per placeholder, none the second time
    assert "no placeholder left" in lines[-1]


# --- the state bucket on moto -----------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto_server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    stop_moto_server(server)


@pytest.fixture
def aws_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


def _state_bucket(*extra: str) -> Any:
    args = ["bootstrap", "--repo", REPO, "--region", REGION, "--step", "state-bucket", *extra]
    return CliRunner().invoke(app, args)


def test_the_state_bucket_is_versioned_encrypted_private_and_tls_only(
    aws_env: dict[str, str],
) -> None:
    # When bootstrap creates the bucket, twice (the second run converges, it does not fail)
    for _ in range(2):
        result = _state_bucket("--account", ACCOUNT, "--bucket", "cr-state-test")
        assert result.exit_code == 0, result.output
    assert "exists already (yours)" in result.output

    # Then the bucket has every setting, read back through the S3 API
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)
    assert s3.get_bucket_location(Bucket="cr-state-test")["LocationConstraint"] == REGION
    assert s3.get_bucket_versioning(Bucket="cr-state-test")["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket="cr-state-test")["ServerSideEncryptionConfiguration"]
    assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket="cr-state-test")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    policy = json.loads(s3.get_bucket_policy(Bucket="cr-state-test")["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_credentials_of_another_account_create_nothing(aws_env: dict[str, str]) -> None:
    result = _state_bucket("--account", "111111111111", "--bucket", "cr-state-other")
    assert result.exit_code == 2
    assert "the AWS credentials are for account 123456789012, not 111111111111" in result.output
    s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)
    assert "cr-state-other" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


# --- environments and the roles' OIDC trust ----------------------------------------------------


def _subjects(outputs: Path, platform: dict[str, list[str]], deploy: dict[str, list[str]]) -> Path:
    """Add the roles' trust subjects to the outputs (as terraform outputs them)."""
    doc = json.loads((outputs / "platform.json").read_text())
    doc["role_subjects"] = {"value": platform}
    (outputs / "platform.json").write_text(json.dumps(doc))
    for root, subjects in deploy.items():
        env_doc = json.loads((outputs / f"{root}.json").read_text())
        env_doc["aws_deploy_role_subjects"] = {"value": subjects}
        (outputs / f"{root}.json").write_text(json.dumps(env_doc))
    return outputs


def _env_subject(env: str, ref: str = "refs/heads/main", repo: str = REPO) -> str:
    return f"repo:{repo}:environment:{env}:ref:{ref}"


TRUSTED = {
    "release": [_env_subject("release")],
    "train": [_env_subject("retrain")],
    "plan-platform": [f"repo:{REPO}:pull_request:ref:refs/pull/*/merge"],
    **{f"terraform-{r}": [_env_subject(f"infrastructure-{r}")] for r in ("platform", "staging")},
}
DEPLOY = {"staging": [_env_subject("staging")], "production": [_env_subject("production")]}


def test_dry_run_creates_the_release_and_monitoring_environments_main_only(
    outputs: Path, human: dict[str, str]
) -> None:
    out = _dry_run(outputs, human)
    for env in ("release", "monitoring"):
        (line,) = [
            ln for ln in out.splitlines() if f"--method PUT /repos/{REPO}/environments/{env} " in ln
        ]
        body = json.loads(line.split("<<< ", 1)[1].split("'")[1])
        assert body["reviewers"] is None  # no approval: CD and the nightly job run unattended
        assert body["deployment_branch_policy"]["custom_branch_policies"] is True
        assert f"POST /repos/{REPO}/environments/{env}/deployment-branch-policies" in out
    # The release jobs get a registry-writing identity of their own (it records releases)
    _, secrets = _set_names(_dry_run(outputs, human, "--step", "mlflow-users"))
    assert ("release", "MLFLOW_DEPLOYER_PASSWORD") in secrets


def test_the_roles_trust_matches_the_environments_of_the_list(outputs: Path) -> None:
    doc = {
        r: json.loads((outputs / f"{r}.json").read_text())
        for r in ("platform", "staging", "production")
    }
    doc["platform"]["role_subjects"] = {"value": TRUSTED}
    for root, subjects in DEPLOY.items():
        doc[root]["aws_deploy_role_subjects"] = {"value": subjects}
    assert oidc.subject_problems(CONFIG, doc, REPO) == []
    assert len(oidc.role_subjects(doc)) == 7


@pytest.mark.parametrize(
    ("role", "subject", "problem"),
    [
        ("release", _env_subject("releases"), "environment releases, which config/platform.yaml"),
        ("release", _env_subject("release", "refs/heads/dev"), "on dev, but release deploys"),
        ("train", _env_subject("retrain", repo="acme/other"), "not repository acme/credit-risk"),
        ("train", f"repo:{REPO}:ref:refs/heads/main:ref:refs/heads/main", "neither an environment"),
    ],
)
def test_a_role_the_github_side_cannot_satisfy_is_named(
    outputs: Path, role: str, subject: str, problem: str
) -> None:
    doc = {
        r: json.loads((outputs / f"{r}.json").read_text())
        for r in ("platform", "staging", "production")
    }
    doc["platform"]["role_subjects"] = {"value": {**TRUSTED, role: [subject]}}
    (found,) = oidc.subject_problems(CONFIG, doc, REPO)
    assert found.startswith(f"role {role} trusts")
    assert problem in found


def test_a_real_run_stops_before_github_when_a_role_cannot_be_assumed(
    outputs: Path, human: dict[str, str], fake_gh: Path
) -> None:
    _subjects(outputs, {**TRUSTED, "release": [_env_subject("cd")]}, DEPLOY)
    options = bootstrap_run.Options(REPO, ACCOUNT, REGION, steps=("github",), outputs_dir=outputs)
    with pytest.raises(ConfigError, match="role release trusts environment cd") as exc:
        bootstrap_run.run(CONFIG, options, lambda _line: None, environ=human)
    assert "nothing was changed on GitHub" in str(exc.value)
    assert _gh_calls(fake_gh) == []
    # The dry run says the same and goes on listing the calls
    out = _dry_run(outputs, human)
    assert "a real run would stop here" in out
    assert "role release trusts environment cd" in out


def test_an_api_user_named_like_a_registry_writer_is_refused() -> None:
    """A terraform-made MLflow user (the API's reader) may not reuse the name of a user bootstrap
    generates: it would rotate that identity's password and hand it to the API, e.g. make
    staging's API read the registry as production's writer."""
    secrets_sent: list[str | None] = []

    class _Admin(mlflow_users.MlflowAdmin):
        def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            secret = kwargs.get("secret")
            secrets_sent.append(secret.value if secret is not None else None)
            return {}

    recorder = Recorder(lambda _line: None, dry_run=False)
    admin = _Admin("http://127.0.0.1:1", "admin", "pw", recorder)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:credit-risk-staging/mlflow-reader"
    values = Values(
        {"staging": {"mlflow_reader_secret_arn": {"value": arn}}, "production": {}},
        {},
        "",
        False,
        lambda _arn: {"username": "deployer", "password": "not-the-writers"},
    )
    with pytest.raises(ConfigError, match="named 'deployer', which is bootstrap's 'deployer' user"):
        mlflow_users.mlflow_users(CONFIG, admin, None, ["credit-risk"], "exp", None, values)
    # And the API's password was never sent to MLflow (no user was given it)
    assert secrets_sent
    assert "not-the-writers" not in secrets_sent


def test_the_spark_jobs_registry_user_is_created_read_only_from_terraforms_secret() -> None:
    """The EMR Serverless jobs read the registry as the user in the platform root's secret:
    bootstrap creates it with that secret's credentials and READ on each model, nothing else
    (no experiment, no write)."""
    calls: list[tuple[str, str, Any, str | None]] = []

    class _Admin(mlflow_users.MlflowAdmin):
        def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
            secret = kwargs.get("secret")
            calls.append((method, path, body, secret.value if secret is not None else None))
            if "/users/get" in path:
                raise NotFoundError("no such user")
            return {}

    recorder = Recorder(lambda _line: None, dry_run=False)
    admin = _Admin("http://127.0.0.1:1", "admin", "pw", recorder)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:credit-risk/spark-registry"
    values = Values(
        {"platform": {"spark_registry_secret_arn": {"value": arn}}},
        {},
        "",
        False,
        lambda got: (
            {"username": "batch-reader", "password": "from-terraform"} if got == arn else {}
        ),
    )

    made = mlflow_users.mlflow_users(
        CONFIG, admin, None, ["credit-risk", "credit-risk-challenger"], "exp", None, values
    )

    assert made["spark-job/platform"] == ("batch-reader", "from-terraform")
    mine = [c for c in calls if c[2] and c[2].get("username") == "batch-reader"]
    assert (
        "POST",
        "/api/2.0/mlflow/users/create",
        {"username": "batch-reader"},
        "from-terraform",
    ) in mine
    grants = [c[2] for c in mine if c[1].endswith("/permissions/grant")]
    assert grants == [
        {
            "username": "batch-reader",
            "resource_type": "registered_model",
            "resource_id": model,
            "permission": "READ",
        }
        for model in ("credit-risk", "credit-risk-challenger")
    ]


def test_the_model_names_come_from_a_strictly_read_promotions_file(tmp_path: Path) -> None:
    # The registry grants follow promotions.yaml: a duplicated model is refused, not merged
    promotions = tmp_path / "promotions.yaml"
    promotions.write_text("models:\n  b:\n    version: 1\n  a:\n    version: 2\n")
    assert bootstrap_run.model_names(promotions) == ["a", "b"]
    promotions.write_text("models:\n  a:\n    version: 1\n  a:\n    version: 2\n")
    with pytest.raises(ConfigError, match=rf"{promotions}:4: duplicate key"):
        bootstrap_run.model_names(promotions)
    with pytest.raises(ConfigError, match=r"cannot read the model names .*repository root"):
        bootstrap_run.model_names(tmp_path / "absent.yaml")
