"""config/platform.yaml (ml/platform/) and `mlops preflight`.

The protection check talks to a small HTTP server on 127.0.0.1 that answers the three GitHub
REST endpoints preflight reads, with the JSON shapes GitHub documents: GitHub itself cannot be
reached from here, so that boundary is the one thing replaced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from typer.testing import CliRunner

from ml.adapters.github import GitHubClient
from ml.cli import app
from ml.errors import ConfigError
from ml.platform.config import load_platform
from ml.platform.docs_table import render_table
from ml.platform.preflight import preflight, present
from ml.platform.workflows import workflow_problems

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_platform(ROOT / "config" / "platform.yaml")


class _NoAliases(yaml.SafeDumper):
    """Writes a value shared by two entries out twice: the loader refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.dump(doc, Dumper=_NoAliases))
    return path


def _raw() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "platform.yaml").read_text())


# --- the list itself --------------------------------------------------------------------------


def test_the_list_holds_every_contract_name() -> None:
    names = {(e.name, s) for _, e in CONFIG.entries() for s in e.scopes}
    for name in (
        "AWS_REGION",
        "MLFLOW_TRACKING_URI",
        "ECR_SERVE_REPOSITORY_URL",
        "ECR_MLFLOW_REPOSITORY_URL",
        "AWS_RELEASE_ROLE_ARN",
        "MLFLOW_ECS_CLUSTER",
        "MLFLOW_ECS_SERVICE",
        "PROMOTION_APP_ID",
        "TF_STATE_BUCKET",
        "MLFLOW_READER_USERNAME",
        "MLFLOW_READER_PASSWORD",
        "NOTIFY_WEBHOOK_URL",
        "AWS_PLAN_ROLE_ARN_PLATFORM",
        "AWS_PLAN_ROLE_ARN_STAGING",
        "AWS_PLAN_ROLE_ARN_PRODUCTION",
    ):
        assert (name, "repository") in names, name
    for env in ("staging", "production"):
        for name in (
            "AWS_DEPLOY_ROLE_ARN",
            "ECS_CLUSTER",
            "ECS_SERVICE",
            "SERVICE_URL",
            "MLFLOW_DEPLOYER_USERNAME",
            "MLFLOW_DEPLOYER_PASSWORD",
            "SERVICE_API_TOKEN",
        ):
            assert (name, env) in names, (name, env)
    assert {("AWS_TRAIN_ROLE_ARN", "retrain"), ("MLFLOW_TRAINER_PASSWORD", "retrain")} <= names
    assert ("PROMOTION_APP_PRIVATE_KEY", "bot") in names
    for root in ("platform", "staging", "production"):
        assert ("AWS_TERRAFORM_ROLE_ARN", f"infrastructure-{root}") in names


def test_the_registry_writing_identity_lives_only_in_main_only_cd_environments() -> None:
    # release (CD's build and MLflow jobs) records the release and the MLflow service's deploy;
    # staging and production move their aliases. Each has its own MLflow user; none has another
    # branch or runs on a PR.
    users: dict[str, str | None] = {}
    for _, entry in CONFIG.entries():
        if entry.name.startswith("MLFLOW_DEPLOYER_"):
            assert entry.write
            for scope in entry.scopes:
                assert CONFIG.environments[scope].branches == ("main",)
                users[f"{entry.name}@{scope}"] = entry.source.user
    assert {k.split("@")[1] for k in users} == {"release", "staging", "production"}
    assert users["MLFLOW_DEPLOYER_PASSWORD@production"] == "deployer"
    assert users["MLFLOW_DEPLOYER_PASSWORD@staging"] != "deployer"
    assert users["MLFLOW_DEPLOYER_PASSWORD@release"] != "deployer"


def test_every_environment_the_workflows_name_is_in_the_list() -> None:
    named = set()
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        for job in (yaml.safe_load(path.read_text()).get("jobs") or {}).values():
            env = job.get("environment")
            env = env.get("name") if isinstance(env, dict) else env
            if env and "${{" not in env:
                named.add(env)
    assert named <= set(CONFIG.environments)
    assert {"release", "monitoring"} <= named


def test_terraform_outputs_are_the_lower_snake_case_of_the_names() -> None:
    # Two exceptions, named here: the apply roles are one map in the platform root (keyed by
    # environment), and the API token is read from the secret whose ARN the stack outputs.
    renamed = {}
    for _, entry in CONFIG.entries():
        if entry.source.kind == "terraform" and entry.output_name() != entry.name.lower():
            renamed[entry.name] = entry.output_name()
    assert renamed == {
        "AWS_TERRAFORM_ROLE_ARN": "aws_terraform_role_arns",
        "SERVICE_API_TOKEN": "api_token_secret_arn",
    }


def test_environment_roots_resolve_per_environment() -> None:
    role = next(e for e in CONFIG.variables if e.name == "AWS_TERRAFORM_ROLE_ARN")
    assert {CONFIG.root_of(role, s) for s in role.scopes} == {"platform"}
    assert role.source.key == "environment"
    deploy = next(e for e in CONFIG.variables if e.name == "AWS_DEPLOY_ROLE_ARN")
    assert CONFIG.root_of(deploy, "production") == "production"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["variables"][0].update(scopes=["qa"]), "unknown scope 'qa'"),
        (lambda d: d["variables"].append(dict(d["variables"][0])), "listed twice"),
        (lambda d: d["variables"][0].update(name="github_x"), "not a valid GitHub"),
        (lambda d: d["variables"][0].update(name="GITHUB_SHA_X"), "not a valid GitHub"),
        (lambda d: d["variables"][0].update(source={"kind": "terraform"}), "names its root"),
        (lambda d: d["variables"][0].update(source={"kind": "human"}), "how to obtain"),
        (lambda d: d["variables"][0].update(write=True), "are for secrets"),
        (lambda d: d["secrets"][0]["source"].update(user="nobody"), "is not an MLflow user"),
        (lambda d: d["secrets"][0]["source"].update(user="serve"), "is not an MLflow user"),
        (lambda d: d["mlflow_users"]["serve"].update(username="x"), "not both"),
        (lambda d: d["mlflow_users"]["serve"].update(roots=[]), "names the roots"),
        (lambda d: d["variables"][0]["source"].update(secret_key="token"), "belongs in a secret"),
        (lambda d: d["environments"]["production"].update(reviewers=["x"]), "unknown reviewer"),
        (lambda d: d["variables"][0].update(colour="red"), "Extra inputs are not permitted"),
        (lambda d: d["variables"][0].update(required_by=[]), "at least 1 item"),
    ],
)
def test_a_wrong_list_is_refused_with_the_reason(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = _raw()
    mutate(doc)
    with pytest.raises(ConfigError, match=message):
        load_platform(_write(tmp_path, doc))


def test_a_missing_list_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"platform.yaml: cannot read it"):
        load_platform(tmp_path / "platform.yaml")


def test_required_names_of_a_deploy_job_in_staging() -> None:
    names = {(r.name, r.scope) for r in CONFIG.required("staging", ["deploy"])}
    assert ("AWS_DEPLOY_ROLE_ARN", "staging") in names
    assert ("MLFLOW_TRACKING_URI", "repository") in names
    assert not any(scope == "production" for _, scope in names)
    assert ("PROMOTION_APP_ID", "repository") not in names


def test_optional_names_are_not_required() -> None:
    names = {r.name for r in CONFIG.required("repository", ["nightly"])}
    assert "NOTIFY_WEBHOOK_URL" not in names
    with_optional = CONFIG.required("repository", ["nightly"], include_optional=True)
    assert "NOTIFY_WEBHOOK_URL" in {r.name for r in with_optional}


def test_unknown_scope_or_workflow_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown scope 'qa'"):
        CONFIG.required("qa")
    with pytest.raises(ConfigError, match="required by \\['ci2'\\]"):
        CONFIG.required("repository", ["ci2"])


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("variable", "eu-west-1", True),
        ("variable", "", False),
        ("variable", None, False),
        ("secret", "true", True),
        ("secret", "s3cr3t", True),
        ("secret", "false", False),
        ("secret", "  ", False),
    ],
)
def test_presence(kind: Any, value: str | None, expected: bool) -> None:
    assert present(kind, value) is expected


def test_workflow_problems_name_both_directions(tmp_path: Path) -> None:
    (tmp_path / "ci.yml").write_text(
        "env:\n  A: ${{ vars.MLFLOW_TRACKING_URI }}\n  B: ${{ vars.NOT_LISTED }}\n"
        "  C: ${{ secrets.GITHUB_TOKEN }}\n"
    )
    problems = workflow_problems(CONFIG, tmp_path, only=["ci"])
    assert any("ci.yml reads variable NOT_LISTED" in p for p in problems)
    assert any("lists secret MLFLOW_READER_PASSWORD as required by ci" in p for p in problems)
    assert not any("GITHUB_TOKEN" in p for p in problems)
    assert not any("MLFLOW_TRACKING_URI" in p for p in problems)


def test_the_docs_table_is_generated_from_the_list() -> None:
    doc = (ROOT / "docs" / "adopting.md").read_text()
    assert render_table(CONFIG) in doc, "docs/adopting.md is stale: run `make platform-docs`"


# --- preflight against a GitHub stand-in ------------------------------------------------------


class _GitHub(BaseHTTPRequestHandler):
    """GET /repos/acme/cr/environments/{env}[/deployment-branch-policies] from `state`."""

    state: ClassVar[dict[str, Any]] = {}
    seen_auth: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        parts = self.path.split("/")
        env = parts[5] if len(parts) > 5 else ""
        doc = self.state.get(env)
        if doc is None or parts[:5] != ["", "repos", "acme", "cr", "environments"]:
            self.send_response(404)
            self.end_headers()
            return
        body = doc["policies"] if self.path.endswith("deployment-branch-policies") else doc["env"]
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def _protected(name: str, reviewers: bool) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"id": 1, "type": "branch_policy"}]
    if reviewers:
        rules.append(
            {
                "id": 2,
                "type": "required_reviewers",
                "prevent_self_review": True,
                "reviewers": [{"type": "Team", "reviewer": {"id": 7, "slug": "approvers"}}],
            }
        )
    return {
        "env": {
            "name": name,
            "protection_rules": rules,
            "deployment_branch_policy": {
                "protected_branches": False,
                "custom_branch_policies": True,
            },
        },
        "policies": {
            "total_count": 1,
            "branch_policies": [{"id": 3, "name": "main", "type": "branch"}],
        },
    }


@pytest.fixture
def github() -> Iterator[GitHubClient]:
    _GitHub.state = {
        name: _protected(name, bool(env.reviewers)) for name, env in CONFIG.environments.items()
    }
    _GitHub.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield GitHubClient("t0ken", "acme/cr", f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


ALL_SET = {
    "MLFLOW_TRACKING_URI": "https://mlflow.example",
    "MLFLOW_READER_USERNAME": "true",
    "MLFLOW_READER_PASSWORD": "true",
}


def test_preflight_passes_when_everything_is_set_and_protected(github: GitHubClient) -> None:
    report = preflight(CONFIG, "repository", ["ci"], ALL_SET, github)
    assert report.problems == []
    assert {r.name for r, ok in report.checked if ok} == set(ALL_SET)
    assert _GitHub.seen_auth
    assert all(a == "Bearer t0ken" for a in _GitHub.seen_auth)


def test_preflight_lists_every_missing_name_and_unprotected_environment(
    github: GitHubClient,
) -> None:
    # Given production without reviewers, staging deployable from any branch, retrain from a
    # second branch, infrastructure-production missing, and one secret unset
    _GitHub.state["production"] = _protected("production", reviewers=False)
    _GitHub.state["staging"]["env"]["deployment_branch_policy"] = None
    _GitHub.state["retrain"]["policies"]["branch_policies"].append(
        {"id": 4, "name": "dev", "type": "branch"}
    )
    del _GitHub.state["infrastructure-production"]
    environ = {**ALL_SET, "MLFLOW_READER_PASSWORD": "false", "MLFLOW_TRACKING_URI": ""}

    report = preflight(CONFIG, "repository", ["ci"], environ, github)

    problems = "\n".join(report.problems)
    assert "secret MLFLOW_READER_PASSWORD (repository) is not set" in problems
    assert "variable MLFLOW_TRACKING_URI (repository) is not set" in problems
    assert "terraform output `mlflow_tracking_uri`" in problems
    assert "environment production has no required reviewers" in problems
    assert "environment staging can be deployed from any branch" in problems
    assert "environment retrain deploys from ['dev', 'main']" in problems
    assert "environment infrastructure-production does not exist" in problems
    assert len(report.problems) == 6


def test_preflight_cli_exits_2_with_the_full_list_and_no_values(tmp_path: Path) -> None:
    # Given a staging deploy job with one secret value set and everything else missing
    env: dict[str, str | None] = {
        "MLFLOW_DEPLOYER_PASSWORD": "hunter2-very-secret",
        "AWS_REGION": "eu-west-1",
        "GITHUB_TOKEN": "",
        "GH_TOKEN": "",
        # Names another test may have left in this process's environment are unset (None).
        **{
            r.name: None
            for r in CONFIG.required("staging", ["deploy"])
            if r.name not in {"MLFLOW_DEPLOYER_PASSWORD", "AWS_REGION"}
        },
    }
    result = CliRunner().invoke(
        app, ["preflight", "--env", "staging", "--workflow", "deploy"], env=env
    )
    out = result.output
    assert result.exit_code == 2, out
    assert "ok      secret MLFLOW_DEPLOYER_PASSWORD (staging)" in out
    assert "MISSING variable ECS_CLUSTER (staging)" in out
    assert "preflight found 7 problem(s) for staging" in out
    assert "environment protection not checked" in out
    assert "hunter2" not in out
    assert "Traceback" not in out


def test_preflight_cli_passes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["preflight", "--env", "repository", "--workflow", "ci"],
        env={**ALL_SET, "GITHUB_TOKEN": "", "GH_TOKEN": ""},
    )
    assert result.exit_code == 0, result.output
    assert "preflight ok: 3 names set in repository" in result.output


# --- what may never be a repository secret -------------------------------------------------------


def test_a_write_secret_at_repository_scope_is_refused(tmp_path: Path) -> None:
    # Given the App's key moved back to repository scope (readable by every branch and PR)
    doc = _raw()
    for entry in doc["secrets"]:
        if entry["name"] == "PROMOTION_APP_PRIVATE_KEY":
            entry["scopes"] = ["repository"]
    # Then the list is refused, naming the secret and the rule
    with pytest.raises(ConfigError, match="PROMOTION_APP_PRIVATE_KEY: a write secret belongs"):
        load_platform(_write(tmp_path, doc))


def test_a_write_secret_in_an_environment_any_branch_can_use_is_refused(tmp_path: Path) -> None:
    doc = _raw()
    doc["environments"]["bot"]["branches"] = ["main", "release/*"]
    with pytest.raises(ConfigError, match="deployment branch policy is main only, not in bot"):
        load_platform(_write(tmp_path, doc))


def test_the_app_key_and_production_writer_live_in_main_only_environments() -> None:
    key = [e for _, e in CONFIG.entries() if e.name == "PROMOTION_APP_PRIVATE_KEY"]
    assert [e.scopes for e in key] == [("bot",)]
    assert CONFIG.environments["bot"].branches == ("main",)
    # Retrain needs a second person: its environment has reviewers (bootstrap sets
    # prevent_self_review wherever there are reviewers)
    assert CONFIG.environments["retrain"].reviewers


# --- retrain's data sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "data/uci_credit_card.csv.gz",
        "models:/credit-risk@production",
        "https://data.vendor.example/pd/2030-01.csv.gz",
        "s3://acme-training/pd/2030-01.csv.gz",
    ],
)
def test_allowed_data_sources_pass(uri: str) -> None:
    from ml.platform.config import RetrainData

    allowed = RetrainData(https_hosts=("data.vendor.example",), s3_buckets=("acme-training",))
    assert allowed.refusal(uri) is None


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://evil.example/x.csv", "host 'evil.example' is not an allowed https host"),
        ("http://data.vendor.example/x.csv", "scheme http:// is not allowed"),
        ("https://u:p@data.vendor.example/x.csv", "credentials or a port"),
        ("https://data.vendor.example:8443/x.csv", "credentials or a port"),
        ("s3://someone-else/x.csv", "bucket 'someone-else' is not an allowed bucket"),
        ("s3://acme-training", "bucket 'acme-training' is not an allowed bucket"),
        ("file:///etc/passwd", "scheme file:// is not allowed"),
        ("/tmp/x.csv", "only a path inside the repository"),
        ("data/../../x.csv", "only a path inside the repository"),
        ("tests/x.csv", "not under data/"),
    ],
)
def test_other_data_sources_are_refused_with_the_fix(uri: str, reason: str) -> None:
    from ml.platform.config import RetrainData

    allowed = RetrainData(https_hosts=("data.vendor.example",), s3_buckets=("acme-training",))
    refusal = allowed.refusal(uri)
    assert refusal is not None
    assert reason in refusal
    assert "add the source to retrain_data in config/platform.yaml" in refusal


def test_the_data_source_check_refuses_an_unlisted_url_before_training() -> None:
    import subprocess
    import sys

    # Given the repository's list (no https host allowed), when retrain's step checks its inputs
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlops"), "platform", "data-source",
         "--uri", "https://evil.example/x",
         "--uri", "models:/credit-risk@production"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # Then it exits 2 naming the URL; the allowed reference passes
    assert done.returncode == 2
    assert "retrain refused its data source before reading a byte" in done.stderr
    assert "evil.example" in done.stderr
    assert "models:/" not in done.stderr


def test_platform_table_rewrites_the_generated_part_only(tmp_path: Path) -> None:
    # Given a document whose generated table is stale
    from ml.platform.docs_table import TABLE_END, TABLE_START

    doc = tmp_path / "adopting.md"
    doc.write_text(f"# Adopting\n\n{TABLE_START}\nold\n{TABLE_END}\n\nafter\n")
    # When `mlops platform table --write` runs twice
    first = CliRunner().invoke(app, ["platform", "table", "--write", str(doc)])
    second = CliRunner().invoke(app, ["platform", "table", "--write", str(doc)])
    # Then the table is replaced once, the rest of the document kept
    assert first.exit_code == 0, first.output
    assert "table updated" in first.output
    assert "already up to date" in second.output
    text = doc.read_text()
    assert render_table(CONFIG) in text
    assert text.startswith("# Adopting")
    assert text.endswith("after\n")


def test_platform_check_agrees_with_the_workflows_and_names_a_difference(tmp_path: Path) -> None:
    # The repository's workflows read exactly what the list says
    ok = CliRunner().invoke(app, ["platform", "check"])
    assert ok.exit_code == 0, ok.output
    assert "agree" in ok.output
    # A workflow reading an unlisted variable is named, exit 2
    flows = tmp_path / "workflows"
    flows.mkdir()
    (flows / "ci.yml").write_text("env:\n  X: ${{ vars.NOT_LISTED }}\n")
    bad = CliRunner().invoke(app, ["platform", "check", "--workflows", str(flows)])
    assert bad.exit_code == 2
    assert "ci.yml reads variable NOT_LISTED" in bad.output
