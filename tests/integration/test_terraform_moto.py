"""Terraform against moto: real `terraform init/plan/apply/destroy`, real AWS API calls.

moto runs in server mode as a subprocess on 127.0.0.1. The small root infra/terraform/tests/moto
(the real `ecr` module, an S3 bucket, an ECS cluster, an IAM role) is applied, checked with boto3,
planned again (no perpetual diff) and destroyed. The real roots run in the session's `aws_world`
(tests/fixtures/terraform.py): `make tf-plan` / `make tf-apply-plan` of the platform, then of
staging, and plans of production and of both again as the plan roles, all against one moto with
the S3 backend in moto too. These tests read what those plans and applies produced. Everything
runs in copies under tmp, so the repository stays clean.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.terraform import (
    DOMAIN,
    ENV_OUTPUTS,
    MLFLOW_IMAGE,
    PLATFORM_OUTPUTS,
    REPOSITORY,
    SERVE_IMAGE,
    STATE_BUCKET,
    ZONE_ID,
    World,
)

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

pytestmark = pytest.mark.timeout(900)


# --- Apply and destroy the moto root ----------------------------------------------------------


def test_moto_root_applies_and_destroys(aws_world: World) -> None:
    # The small root's apply, checks, second plan and destroy ran beside the platform's apply
    # (tests/fixtures/terraform.py, moto_root_lifecycle); its outcome is reported here.
    if aws_world.moto_root_error is not None:
        raise aws_world.moto_root_error


# --- The real roots, as `aws_world` built them ------------------------------------------------


def _created(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c["address"]: c["change"]["after"]
        for c in plan["resource_changes"]
        if c["change"]["actions"] == ["create"]
    }


def _registered_container(world: World, family: str) -> dict[str, Any]:
    """The container terraform registered (the definition holds secret ARNs, unknown at plan):
    revision 1, since the deploy tests sharing this world register later ones."""
    ecs = world.moto.client("ecs")
    found = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    return dict(found["containerDefinitions"][0])


def _data_source(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """A data source's values: read during the plan (prior_state) or deferred to the apply."""
    for change in plan["resource_changes"]:
        if change["address"] == address:
            return dict(change["change"]["after"])

    def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    for resource in walk(plan["prior_state"]["values"]["root_module"]):
        if resource["address"] == address:
            return dict(resource["values"])
    raise KeyError(address)


def test_platform_and_both_environments_hold_exactly_one_mlflow(aws_world: World) -> None:
    # Given the plans of the three roots (the platform's and staging's were then applied)
    plans = {root: aws_world.plans[root] for root in ("platform", "staging", "production")}

    # When the MLflow services and databases are counted across them
    def mlflow(kind: str) -> list[str]:
        return [
            f"{root}: {address}"
            for root, plan in plans.items()
            for address, after in _created(plan).items()
            if address.split(".")[-1].split("[")[0] == "this"
            and f"{kind}." in address
            and "mlflow" in (address + json.dumps(after.get("name") or after.get("identifier")))
        ]

    services, databases = mlflow("aws_ecs_service"), mlflow("aws_db_instance")
    # Then there is one of each, in the platform, and none in an environment
    assert services == ["platform: module.mlflow.module.server.aws_ecs_service.this[0]"]
    assert databases == ["platform: module.mlflow.aws_db_instance.this"]
    for env in ("staging", "production"):
        types = {c["type"] for c in plans[env]["resource_changes"]}
        assert "aws_db_instance" not in types, env
        assert "aws_s3_bucket" not in types, env


def test_platform_builds_the_shared_pieces_and_publishes_them(aws_world: World) -> None:
    plan = aws_world.plans["platform"]
    created = _created(plan)
    types = {c["type"] for c in plan["resource_changes"]}
    for expected in (
        "aws_vpc",
        "aws_nat_gateway",
        "aws_flow_log",
        "aws_kms_key",
        "aws_ecr_repository",
        "aws_ecr_lifecycle_policy",
        "aws_iam_openid_connect_provider",
        "aws_db_instance",
        "aws_ecs_service",
        "aws_secretsmanager_secret",
        "aws_ssm_parameter",
    ):
        assert expected in types, f"{expected} not planned by the platform"
    assert set(plan["output_changes"]) >= PLATFORM_OUTPUTS
    repositories = sorted(
        a["name"] for k, a in created.items() if k.endswith("aws_ecr_repository.this")
    )
    assert repositories == ["credit-risk/mlflow", "credit-risk/serve"]
    # MLflow runs the image CD pushed, with MLflow's basic-auth app and its secrets from
    # Secrets Manager (admin credentials, Flask key, database login: none in plain text).
    assert "module.mlflow.module.server.aws_ecs_task_definition.this[0]" in created
    server = _registered_container(aws_world, "credit-risk-mlflow")
    assert server["image"] == MLFLOW_IMAGE
    assert "--app-name basic-auth" in " ".join(server["command"])
    assert "--serve-artifacts" in " ".join(server["command"])
    secrets = {s["name"] for s in server["secrets"]}
    assert {"MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"} <= secrets
    assert {"MLFLOW_FLASK_SERVER_SECRET_KEY", "DB_PASSWORD"} <= secrets
    assert not any("PASSWORD" in e["name"] for e in server["environment"])
    # The environments read the platform through one SSM parameter, which exists after apply.
    ssm = aws_world.moto.client("ssm")
    published = json.loads(
        ssm.get_parameter(Name="/credit-risk/platform/outputs")["Parameter"]["Value"]
    )
    assert published["schema_version"] == 1
    assert set(published["permissions_boundary_arn"]) == {"staging", "production"}


@pytest.mark.parametrize("env", ["staging", "production"])
def test_environment_runs_the_api_as_itself_with_its_token_from_secrets_manager(
    aws_world: World, env: str
) -> None:
    plan = aws_world.plans[env]
    created = _created(plan)
    assert set(plan["output_changes"]) >= ENV_OUTPUTS
    assert "module.api.aws_ecs_task_definition.this[0]" in created
    if env == "staging":  # applied: the registered definition is in moto
        api = _registered_container(aws_world, "credit-risk-staging-api")
        environment = {e["name"]: e["value"] for e in api["environment"]}
        assert environment["SERVE_ENVIRONMENT"] == env
        assert environment["SERVE_MODEL_ALIAS"] == env
        assert api["image"] == SERVE_IMAGE
        secrets = {s["name"]: s["valueFrom"] for s in api["secrets"]}
        names = {"SERVE_API_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
        assert set(secrets) == names
        token = aws_world.outputs["staging"]["api_token_secret_arn"]["value"]
        assert secrets["SERVE_API_TOKEN"] == f"{token}:token::"
        assert not any("TOKEN" in e["name"] or "PASSWORD" in e["name"] for e in api["environment"])
    listeners = {a: v for a, v in created.items() if ".aws_lb_listener." in a}
    ingress = sorted(v["cidr_ipv4"] for a, v in created.items() if ".alb_cidr[" in a)
    if env == "production":
        # HTTPS with api.production.<domain>'s certificate (test_names_and_certificates_are_
        # planned); port 80 only redirects; ingress is the listed CIDRs only.
        https = listeners["module.api.aws_lb_listener.https[0]"]
        assert https["protocol"] == "HTTPS"
        assert (
            listeners["module.api.aws_lb_listener.http"]["default_action"][0]["type"] == "redirect"
        )
        assert ingress == ["203.0.113.0/24"]
    else:
        # Without a domain: plain HTTP, on an internal load balancer only (inside the VPC).
        assert set(listeners) == {"module.api.aws_lb_listener.http"}
        assert created["module.api.aws_lb.this"]["internal"] is True


def _trust(plan: dict[str, Any], address: str) -> dict[str, list[str]]:
    document = _data_source(plan, address)
    return {
        f"{c['test']} {c['variable']}": c["values"]
        for s in document["statement"]
        for c in s["condition"]
    }


def test_oidc_trust_binds_repository_environment_and_main(aws_world: World) -> None:
    repo = f"repo:{REPOSITORY}"
    sub = "token.actions.githubusercontent.com:sub"
    aud = "StringEquals token.actions.githubusercontent.com:aud"
    # The deploy role of each environment: its GitHub environment, on main, nothing else.
    for env in ("staging", "production"):
        trust = _trust(
            aws_world.plans[env], "module.role_deploy.data.aws_iam_policy_document.trust"
        )
        assert trust == {
            aud: ["sts.amazonaws.com"],
            f"StringEquals {sub}": [f"{repo}:environment:{env}:ref:refs/heads/main"],
        }
    platform = aws_world.plans["platform"]
    main = "ref:refs/heads/main"
    doc = "data.aws_iam_policy_document.trust"
    expected = {
        f"module.role_release.{doc}": f"{repo}:environment:release:{main}",
        f"module.role_train.{doc}": f"{repo}:environment:retrain:{main}",
    }
    for root in ("platform", "staging", "production"):
        expected[f'module.role_terraform["{root}"].data.aws_iam_policy_document.trust'] = (
            f"{repo}:environment:infrastructure-{root}:ref:refs/heads/main"
        )
    for address, subject in expected.items():
        assert _trust(platform, address) == {
            aud: ["sts.amazonaws.com"],
            f"StringEquals {sub}": [subject],
        }
    # Plan roles: pull requests of the repository (never forks: they get no OIDC token).
    for root in ("platform", "staging", "production"):
        trust = _trust(platform, f'module.role_plan["{root}"].data.aws_iam_policy_document.trust')
        assert trust[f"StringLike {sub}"] == [f"{repo}:pull_request:ref:refs/pull/*/merge"]


def test_state_lives_in_s3_one_key_per_root_and_no_lock_is_left(aws_world: World) -> None:
    s3 = aws_world.moto.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=STATE_BUCKET).get("Contents", []))
    assert keys == [
        "credit-risk/platform/terraform.tfstate",
        "credit-risk/staging/terraform.tfstate",
    ]
    # use_lockfile wrote <key>.tflock during each apply (conditional write) and removed it.
    writes = [c for c in aws_world.moto.calls() if c.service == "s3" and c.operation == "PutObject"]
    assert any(c.params["Key"].endswith(".tflock") for c in writes)


def test_reviewed_plan_is_the_applied_plan(aws_world: World, tmp_path: Path) -> None:
    plan_dir = aws_world.plan_dir
    plan, checksum = plan_dir / "staging.tfplan", plan_dir / "staging.tfplan.sha256"

    # Given the plan staging was applied from, downloaded again as a PR's artefact
    shutil.copy(aws_world.tmp / "staging.applied.tfplan", plan)
    shutil.copy(aws_world.tmp / "staging.applied.sha256", checksum)
    # When it is applied a second time, then terraform refuses the stale plan, in one line
    stale = aws_world.make("tf-apply-plan", "staging", "terraform-staging", ok_codes=(2,))
    message = [line for line in stale.stderr.splitlines() if line.startswith("error:")]
    assert message == [
        "error: the reviewed plan of staging is stale (its state changed after the plan was made): "
        "nothing was applied; re-run the plan and review it again"
    ], stale.stderr

    # Given a plan file that is not the one its checksum names
    with plan.open("ab") as fh:
        fh.write(b"tampered")
    # When it is applied, then the checksum refuses it before terraform runs
    tampered = aws_world.make("tf-apply-plan", "staging", "terraform-staging", ok_codes=(2,))
    assert (
        "does not match staging.tfplan.sha256: it is not the plan that was reviewed"
        in tampered.stderr
    )
    assert "terraform init" not in tampered.stderr

    # Given no plan at all, then it says what to do
    plan.unlink()
    missing = aws_world.make("tf-apply-plan", "staging", "terraform-staging", ok_codes=(2,))
    assert "error: no reviewed plan for staging" in missing.stderr


def test_seed_secrets_gives_each_secret_a_value_once_and_prints_none(aws_world: World) -> None:
    secrets = aws_world.moto.client("secretsmanager")
    token = aws_world.outputs["staging"]["api_token_secret_arn"]["value"]
    # Given the secrets terraform created empty (terraform never holds their values)
    assert (
        "VersionIdsToStages" not in secrets.describe_secret(SecretId=token)
        or not secrets.describe_secret(SecretId=token)["VersionIdsToStages"]
    )

    # When they are seeded twice (with the bootstrap's administrator credentials)
    to_moto = {"AWS_ENDPOINT_URL": aws_world.moto.url}
    first = aws_world.make("tf-seed-secrets", "staging", "admin", to_moto)
    value = json.loads(secrets.get_secret_value(SecretId=token)["SecretString"])
    second = aws_world.make("tf-seed-secrets", "staging", "admin", to_moto)

    # Then each got a generated value once, and neither run printed it
    assert "api_token: seeded" in first.stdout
    assert "mlflow_reader: seeded" in first.stdout
    assert "api_token: has a value already, left unchanged" in second.stdout
    assert set(value) == {"token"}
    assert len(value["token"]) >= 40
    assert json.loads(secrets.get_secret_value(SecretId=token)["SecretString"]) == value
    assert value["token"] not in first.stdout + first.stderr + second.stdout + second.stderr
    reader = aws_world.outputs["staging"]["mlflow_reader_secret_arn"]["value"]
    login = json.loads(secrets.get_secret_value(SecretId=reader)["SecretString"])
    assert login["username"] == "serve-staging"
    assert len(login["password"]) >= 40


def test_release_images_are_never_expired_by_the_lifecycle(aws_world: World) -> None:
    ecr = aws_world.moto.client("ecr")
    for repository in ("credit-risk/serve", "credit-risk/mlflow"):
        rules = json.loads(
            ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"]
        )["rules"]
        first = min(rules, key=lambda r: r["rulePriority"])
        # ECR: an image matched by a higher-priority rule is never expired by a lower one, and
        # the first rule selects every release-* image but expires none below its count.
        assert first["selection"] == {
            "tagStatus": "tagged",
            "tagPatternList": ["release-*"],
            "countType": "imageCountMoreThan",
            "countNumber": 10000,
        }
        later = [r["selection"] for r in rules if r is not first]
        assert all("tagPatternList" not in s and "tagPrefixList" not in s for s in later)


def _names_and_certificates(plan: dict[str, Any], module: str, name: str) -> None:
    """`module` (a modules/dns call) plans a DNS-validated certificate for `name`, its
    validation record and the validation, and A/AAAA aliases to the load balancer."""
    created = _created(plan)
    certificate = created[f"{module}.aws_acm_certificate.this[0]"]
    assert certificate["domain_name"] == name
    assert certificate["validation_method"] == "DNS"
    validation = created[f'{module}.aws_route53_record.validation["{name}"]']
    assert validation["zone_id"] == ZONE_ID
    assert f"{module}.aws_acm_certificate_validation.this[0]" in created
    for kind in ("A", "AAAA"):
        alias = created[f'{module}.aws_route53_record.alias["{kind}"]']
        assert alias["name"] == name
        assert alias["zone_id"] == ZONE_ID
    # The HTTPS listener takes the validated certificate (known once ACM issued it).
    https = next(
        c for c in plan["resource_changes"] if c["address"].endswith("aws_lb_listener.https[0]")
    )
    assert https["change"]["after_unknown"].get("certificate_arn") is True


def test_production_api_has_its_name_and_certificate(aws_world: World) -> None:
    # moto plans these resources but issues no real certificate: that ACM sees the validation
    # record and issues one only a real account with a delegated public zone shows.
    plan = aws_world.plans["production"]
    _names_and_certificates(plan, "module.api_name[0]", f"api.production.{DOMAIN}")
    outputs = plan["output_changes"]
    assert outputs["service_url"]["after"] == f"https://api.production.{DOMAIN}"
    assert (
        outputs["github_environment_variables"]["after"]["SERVICE_URL"]
        == f"https://api.production.{DOMAIN}"
    )


def test_platform_with_a_domain_and_runners_plans_names_certificates_and_the_runner(
    aws_world: World,
) -> None:
    # Given the applied platform, planned again with its domain and GitHub connection set
    plan_file = aws_world.tmp / "platform-dns.tfplan"
    connection = "arn:aws:codeconnections:us-east-1:123456789012:connection/0a1b2c3d"
    aws_world.terraform(
        "platform", "plan", "-no-color", "-lock=false", "-input=false", f"-out={plan_file}",
        "-var-file=../envs/platform.tfvars", f"-var=mlflow_image={MLFLOW_IMAGE}",
        f"-var=domain_name={DOMAIN}", f"-var=route53_zone_id={ZONE_ID}",
        f"-var=github_connection_arn={connection}",
    )  # fmt: skip
    plan = json.loads(aws_world.terraform("platform", "show", "-json", str(plan_file)))

    # Then MLflow gets mlflow.<domain> with its certificate, and HTTPS under that name
    _names_and_certificates(plan, "module.mlflow_name[0]", f"mlflow.{DOMAIN}")
    outputs = plan["output_changes"]
    assert outputs["mlflow_tracking_uri"]["after"] == f"https://mlflow.{DOMAIN}"
    # And the in-VPC runner: the project in the private subnets and the job-queued webhook
    created = _created(plan)
    project = created["module.codebuild_runner[0].aws_codebuild_project.this"]
    assert project["name"] == "credit-risk-gha-runner"
    assert project["source"][0]["auth"][0] == {"type": "CODECONNECTIONS", "resource": connection}
    webhook = created["module.codebuild_runner[0].aws_codebuild_webhook.this"]
    filters = [f for group in webhook["filter_group"] for f in group["filter"]]
    assert [(f["type"], f["pattern"]) for f in filters] == [("EVENT", "WORKFLOW_JOB_QUEUED")]
    private = {
        r["values"]["id"]
        for r in _state_resources(plan["prior_state"]["values"]["root_module"])
        if r["address"].startswith("module.network.aws_subnet.private")
    }
    assert private
    assert set(project["vpc_config"][0]["subnets"]) == private


def _state_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _state_resources(child)


def test_the_mlflow_tasks_read_the_database_password_by_the_secrets_arn(aws_world: World) -> None:
    # So a task started after a rotation reads the new password. The rule and state machine
    # that replace the tasks after a rotation are planned in modules/mlflow/tests (moto lacks
    # Step Functions' ValidateStateMachineDefinition, so the world switches them off); that the
    # event arrives and ECS replaces the tasks only a real account shows.
    server = _registered_container(aws_world, "credit-risk-mlflow")
    secrets = {s["name"]: s["valueFrom"] for s in server["secrets"]}
    secret_arn = secrets["DB_PASSWORD"].removesuffix(":password::")
    assert secret_arn.startswith("arn:aws:secretsmanager:")
    assert secrets["DB_USER"] == f"{secret_arn}:username::"
    assert not any("PASSWORD" in e["name"] for e in server["environment"])


@pytest.mark.parametrize(("env", "bounds"), [("staging", (1, 3)), ("production", (2, 8))])
def test_the_api_scales_itself_between_its_environment_s_bounds(
    aws_world: World, env: str, bounds: tuple[int, int]
) -> None:
    created = _created(aws_world.plans[env])
    target = created["module.api.aws_appautoscaling_target.this[0]"]
    assert (target["min_capacity"], target["max_capacity"]) == bounds
    assert target["scalable_dimension"] == "ecs:service:DesiredCount"
    # Created at the lower bound; afterwards autoscaling owns the count
    assert created["module.api.aws_ecs_service.this[0]"]["desired_count"] == bounds[0]
    requests = created["module.api.aws_appautoscaling_policy.requests[0]"]
    cpu = created["module.api.aws_appautoscaling_policy.cpu[0]"]
    tracking = requests["target_tracking_scaling_policy_configuration"][0]
    metric = tracking["predefined_metric_specification"][0]
    assert metric["predefined_metric_type"] == "ALBRequestCountPerTarget"
    # measured 2,300 req/s per vCPU x 0.5 vCPU (api_cpu 512) x 0.5 headroom x 60 s
    assert tracking["target_value"] == 34_500
    assert (tracking["scale_in_cooldown"], tracking["scale_out_cooldown"]) == (300, 60)
    assert tracking["disable_scale_in"] is False
    guard = cpu["target_tracking_scaling_policy_configuration"][0]
    assert guard["predefined_metric_specification"][0]["predefined_metric_type"] == (
        "ECSServiceAverageCPUUtilization"
    )
    assert guard["disable_scale_in"] is True  # CPU adds tasks; the request policy removes them
    if env == "staging":  # applied: Application Auto Scaling in moto holds them
        scaling = aws_world.moto.client("application-autoscaling")
        service = target["resource_id"]  # the platform's MLflow service scales too
        (registered,) = scaling.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[service]
        )["ScalableTargets"]
        assert (registered["MinCapacity"], registered["MaxCapacity"]) == bounds
        policies = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)[
            "ScalingPolicies"
        ]
        assert sorted(p["PolicyName"] for p in policies) == [
            "credit-risk-staging-api-cpu",
            "credit-risk-staging-api-requests",
        ]
