"""Terraform against moto: real `terraform init/plan/apply/destroy`, real AWS API calls.

moto runs in server mode as a subprocess on 127.0.0.1. The small root infra/terraform/tests/moto
(the real `ecr` module, an S3 bucket, an ECS cluster, an IAM role) is applied and destroyed, and
boto3 checks what exists in between. The stack root is planned against the same server with
each environment's tfvars, which proves their data sources, counts and for_each keys resolve and
the module graph has no cycle. Everything runs in copies under tmp_path, so the repository stays
clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.services import start_moto_server, stop_moto_server
from tests.fixtures.terraform import TF_DIR, WORKFLOW_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

pytestmark = pytest.mark.timeout(900)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server subprocess on a free loopback port; fails loudly if it cannot start."""
    server = start_moto_server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server.url
    stop_moto_server(server)


@pytest.fixture(scope="module")
def terraform() -> str:
    path = shutil.which(os.environ.get("TERRAFORM", "terraform"))
    if path is None:
        pytest.fail(
            "terraform is not on PATH: install terraform >= 1.9 (see infra/terraform/README)"
        )
    return path


def _plugin_dir() -> str | None:
    """The provider mirror, as mk/terraform.mk finds it: TF_PLUGIN_DIR, else */tf-plugins."""
    if "TF_PLUGIN_DIR" in os.environ:
        return os.environ["TF_PLUGIN_DIR"] or None
    for candidate in [Path("/opt/tf-plugins"), *sorted(Path("/").glob("*/tf-plugins"))]:
        if (candidate / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> dict[str, str]:
    """Environment for terraform: dummy credentials for moto, no real AWS profile, no prompts."""
    config = tmp_path_factory.mktemp("tfcli") / "terraformrc"
    config.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TF_")) or k in ("AWS_CA_BUNDLE",)
    }
    cache = ROOT / ".cache" / "terraform-plugins"
    cache.mkdir(parents=True, exist_ok=True)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # moto's dummy credentials
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        TF_CLI_CONFIG_FILE=str(config),
        TF_PLUGIN_CACHE_DIR=str(cache),
    )
    return env


def _run(
    args: list[str], cwd: Path, env: dict[str, str], ok_codes: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode not in ok_codes:
        pytest.fail(
            f"`{' '.join(args)}` in {cwd} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def _copy_tree(tmp_path: Path, *roots: str) -> Path:
    """Copy modules/ and the given roots into tmp_path, keeping their relative layout."""
    ignore = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfplan")
    shutil.copytree(TF_DIR / "modules", tmp_path / "modules", ignore=ignore)
    for root in roots:
        shutil.copytree(TF_DIR / root, tmp_path / root, ignore=ignore)
    return tmp_path


def _init(terraform: str, workdir: Path, env: dict[str, str]) -> None:
    args = [terraform, "init", "-no-color"]
    plugin_dir = _plugin_dir()
    if plugin_dir:
        args.append(f"-plugin-dir={plugin_dir}")
    result = subprocess.run(
        args, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        hint = (
            f"with the provider mirror {plugin_dir}"
            if plugin_dir
            else "without a provider mirror (set TF_PLUGIN_DIR) and without registry access"
        )
        pytest.fail(f"terraform init failed {hint}:\n{result.stdout}\n{result.stderr}")


def _aws(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
    )


# --- Apply and destroy the moto root ----------------------------------------------------------


def test_moto_root_applies_and_destroys(
    tmp_path: Path, terraform: str, tf_env: dict[str, str], moto_endpoint: str
) -> None:
    # Given a copy of the moto root and a unique name prefix
    workdir = _copy_tree(tmp_path, "tests/moto") / "tests" / "moto"
    name = f"tfmoto-{uuid.uuid4().hex[:8]}"
    tf_vars = ["-var", f"endpoint_url={moto_endpoint}", "-var", f"name={name}"]
    _init(terraform, workdir, tf_env)

    # When it is planned and applied
    plan = _run([terraform, "plan", "-no-color", "-out=moto.tfplan", *tf_vars], workdir, tf_env)
    assert "Plan: 7 to add, 0 to change, 0 to destroy." in plan.stdout, plan.stdout[-3000:]
    _run([terraform, "apply", "-no-color", "moto.tfplan"], workdir, tf_env)
    outputs = json.loads(_run([terraform, "output", "-json"], workdir, tf_env).stdout)

    # Then the resources exist in moto as the modules describe them
    ecr = _aws("ecr", moto_endpoint)
    repo = ecr.describe_repositories(repositoryNames=[f"{name}/api"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    assert outputs["ecr_repository_url"]["value"] == repo["repositoryUri"]
    policy = json.loads(
        ecr.get_lifecycle_policy(repositoryName=f"{name}/api")["lifecyclePolicyText"]
    )
    assert [r["selection"]["tagStatus"] for r in policy["rules"]] == ["untagged", "any"]
    assert policy["rules"][1]["selection"]["countNumber"] == 10

    s3 = _aws("s3", moto_endpoint)
    bucket = f"{name}-artifacts"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"project": "credit-risk", "environment": "moto-test", "managed-by": "terraform"}

    ecs = _aws("ecs", moto_endpoint)
    clusters = ecs.describe_clusters(clusters=[name])["clusters"]
    assert [c["status"] for c in clusters] == ["ACTIVE"]

    iam = _aws("iam", moto_endpoint)
    role = iam.get_role(RoleName=f"{name}-task")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}

    # And a second plan finds nothing to change (no perpetual diff in the modules)
    again = _run(
        [terraform, "plan", "-no-color", "-detailed-exitcode", *tf_vars],
        workdir,
        tf_env,
        ok_codes=(0, 2),
    )
    assert again.returncode == 0, f"second plan is not empty:\n{again.stdout[-4000:]}"

    # When it is destroyed
    _run([terraform, "destroy", "-no-color", "-auto-approve", *tf_vars], workdir, tf_env)

    # Then nothing is left
    with pytest.raises(ClientError) as missing_repo:
        ecr.describe_repositories(repositoryNames=[f"{name}/api"])
    assert missing_repo.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    with pytest.raises(ClientError) as missing_bucket:
        s3.head_bucket(Bucket=bucket)
    assert missing_bucket.value.response["Error"]["Code"] in ("404", "NoSuchBucket")
    remaining = ecs.describe_clusters(clusters=[name])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in remaining), remaining
    with pytest.raises(ClientError) as missing_role:
        iam.get_role(RoleName=f"{name}-task")
    assert missing_role.value.response["Error"]["Code"] == "NoSuchEntity"
    state = json.loads((workdir / "terraform.tfstate").read_text())
    assert state["resources"] == []


# --- Plan the stack for each environment ------------------------------------------------------

OVERRIDE = """
# Written by the moto test: local state, and every AWS call to moto.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""
SERVICES = ["ec2", "sts", "iam", "s3", "ecr", "ecs", "kms", "rds", "logs", "elbv2"]


@pytest.mark.parametrize("env", ["staging", "production"])
def test_stack_plans_each_env_against_moto(
    tmp_path: Path, terraform: str, tf_env: dict[str, str], moto_endpoint: str, env: str
) -> None:
    # Given a copy of the stack root whose provider talks to moto, with local state
    workdir = _copy_tree(tmp_path, "stack", "envs") / "stack"
    endpoints = "\n".join(f'    {s} = "{moto_endpoint}"' for s in SERVICES)
    (workdir / "moto_override.tf").write_text(OVERRIDE.format(endpoints=endpoints))
    _init(terraform, workdir, tf_env)

    # When it is planned with the env's tfvars and the variables CI passes, as `make tf-plan` does
    plan = _run(
        [
            terraform,
            "plan",
            "-no-color",
            "-out=env.tfplan",
            f"-var-file=../envs/{env}.tfvars",
            "-var",
            "github_repository=acme/credit-risk-gitops",
            "-var",
            "state_bucket_name=acme-terraform-state",
            "-var",
            f"aws_region={REGION}",
        ],
        workdir,
        tf_env,
    )

    # Then it creates the whole environment and exposes every output the workflows read
    assert "to add, 0 to change, 0 to destroy." in plan.stdout, plan.stdout[-3000:]
    shown = json.loads(_run([terraform, "show", "-json", "env.tfplan"], workdir, tf_env).stdout)
    created = [c for c in shown["resource_changes"] if c["change"]["actions"] == ["create"]]
    assert len(created) > 80, f"only {len(created)} resources planned"
    types = {c["type"] for c in created}
    for expected in (
        "aws_vpc",
        "aws_nat_gateway",
        "aws_flow_log",
        "aws_ecr_repository",
        "aws_ecs_service",
        "aws_lb",
        "aws_appautoscaling_policy",
        "aws_db_instance",
        "aws_s3_bucket_policy",
        "aws_iam_openid_connect_provider",
    ):
        assert expected in types, f"{expected} not planned"
    missing = WORKFLOW_OUTPUTS - set(shown["output_changes"])
    assert not missing, f"outputs missing from the plan: {sorted(missing)}"

    by_address = {c["address"]: c["change"]["after"] for c in created}
    db = by_address["module.mlflow.aws_db_instance.this"]
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True
    assert db["multi_az"] is (env == "production")
    # The env's tfvars shape it: its name, its CIDR, one NAT gateway per zone only in production.
    vpc = by_address["module.network.aws_vpc.this"]
    assert vpc["tags_all"]["environment"] == env
    tfvars = (TF_DIR / "envs" / f"{env}.tfvars").read_text()
    assert f'vpc_cidr_block = "{vpc["cidr_block"]}"' in tfvars
    zones = [a for a in by_address if a.startswith("module.network.aws_subnet.public[")]
    nat_gateways = [a for a in by_address if a.startswith("module.network.aws_nat_gateway.")]
    assert len(zones) > 1
    assert len(nat_gateways) == (len(zones) if env == "production" else 1), nat_gateways
    service = by_address["module.api.aws_ecs_service.this"]
    assert service["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]
    # The trust policy document is read at apply (it names the new OIDC provider), but its
    # conditions are known now: the terraform role trusts only the infrastructure environment.
    reads = {c["address"]: c["change"]["after"] for c in shown["resource_changes"]}
    trust = reads['module.github_oidc.data.aws_iam_policy_document.trust["terraform"]']
    conditions = {c["variable"]: c["values"] for c in trust["statement"][0]["condition"]}
    assert conditions == {
        "token.actions.githubusercontent.com:aud": ["sts.amazonaws.com"],
        "token.actions.githubusercontent.com:sub": [
            "repo:acme/credit-risk-gitops:environment:infrastructure"
        ],
    }
    # Plain HTTP for the production API is allowed for a bootstrap, but never silently; staging
    # may serve it without a warning.
    assert ("api_serves_https" in plan.stdout + plan.stderr) is (env == "production")
