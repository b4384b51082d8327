"""Least privilege, proven: every AWS call a path makes is allowed by the policy terraform
rendered for the role that path runs as, and nothing more is needed.

The world (tests/fixtures/terraform.py) is the platform and staging applied to moto with the
repository's make targets, so the policies evaluated here are the documents terraform put into
(moto's) IAM. For each path the calls are recorded where they happen: botocore's event hooks for
the Python paths run in this process (tests/fixtures/iam/calls.py, every client created while
recording), moto's request recorder for terraform and for the separate `mlflow server` process.
Each call is mapped to the IAM requests AWS authorizes for it, dependent actions included
(tests/fixtures/iam/actions.py says which and where AWS documents them), and evaluated with
@cloud-copilot/iam-simulate against the role's identity policies, its permissions boundary and
the resource's policy (bucket policy, KMS key policy). A request without an Allow fails the test
with the call that needed it; `test_a_policy_without_ecs_tag_resource_fails_the_deploy_path`
shows the check can fail.

The paths:
  image push     (release role)   ECR auth token, layer upload, put image, the release-<sha> tag,
                                  describe images. docker's registry protocol cannot run against
                                  moto; the same ECR API operations (which AWS authorizes with the
                                  same IAM actions) stand in for it.
  deploy         (deploy role)    the ECS and ECR calls of `mlops deploy`, with its functions in
                                  its order (ml/deploy/transaction.py): the image in ECR, the
                                  running revision, a revision from the family's latest one (with
                                  its tags), the service update, one look at the rollout.
  MLflow deploy  (release role)   the same functions on the platform's MLflow service.
  promotion      (MLflow server)  a real `mlflow server --serve-artifacts` on the artefact bucket
                                  in moto: clients write and read models through it, so its task
                                  role is the only identity whose S3 calls reach the bucket.
  terraform      (terraform and plan roles of each root)  plan and apply as recorded in the world.

A table of every call, the IAM requests it maps to and the decision is written to
build/iam/least-privilege.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.iam.actions import Account, IamRequest, requests_for
from tests.fixtures.iam.calls import AwsCall, BotocoreRecorder
from tests.fixtures.iam.simulate import Decision, evaluate
from tests.fixtures.services import free_port
from tests.fixtures.terraform import ACCOUNT_ID, REGION, ROOT, World

pytestmark = pytest.mark.timeout(1800)

REPORT = ROOT / "build" / "iam" / "least-privilege.md"
GIT_SHA = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"


# --- The rendered policies ----------------------------------------------------------------------


@dataclass
class Role:
    """A role as terraform created it: inline policies and permissions boundary."""

    name: str
    arn: str
    policies: dict[str, dict[str, Any]]
    boundary: dict[str, Any] | None


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import urllib.parse

        return dict(json.loads(urllib.parse.unquote(value)))
    return dict(value)


@pytest.fixture(scope="module")
def roles(aws_world: World) -> dict[str, Role]:
    """Every role in the account, with the documents terraform rendered into it."""
    _REPORT_SECONDS.update(aws_world.seconds)
    iam = aws_world.moto.client("iam")
    found: dict[str, Role] = {}
    for page in iam.get_paginator("list_roles").paginate():
        for summary in page["Roles"]:
            name = summary["RoleName"]
            role = iam.get_role(RoleName=name)["Role"]
            policies = {
                p: _document(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
            }
            boundary = None
            if "PermissionsBoundary" in role:
                arn = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                boundary = _document(
                    iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
                        "Document"
                    ]
                )
            found[name] = Role(name, role["Arn"], policies, boundary)
    return found


def _role(roles: dict[str, Role], prefix: str) -> Role:
    matches = [r for n, r in roles.items() if n == prefix or n.startswith(f"{prefix}-2")]
    assert len(matches) == 1, f"expected one role named {prefix}(-<suffix>), found {sorted(roles)}"
    return matches[0]


@pytest.fixture(scope="module")
def account(aws_world: World, roles: dict[str, Role]) -> Account:
    """Facts the calls do not carry: boundaries, resource tags, buckets encrypted with SSE-KMS."""
    moto = aws_world.moto
    tags: dict[str, dict[str, str]] = {}
    ec2 = moto.client("ec2")
    for group in ec2.describe_security_groups()["SecurityGroups"]:
        arn = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{group['GroupId']}"
        tags[arn] = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    elb = moto.client("elbv2")
    arns = [lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elb.describe_target_groups()["TargetGroups"]]
    for lb in list(arns):
        if ":loadbalancer/" in lb:
            arns += [
                x["ListenerArn"] for x in elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]
            ]
    for i in range(0, len(arns), 20):
        for d in elb.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
            tags[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d.get("Tags", [])}
    kms = moto.client("kms")
    for key in kms.list_keys()["Keys"]:
        listed = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
        tags[key["KeyArn"]] = {t["TagKey"]: t["TagValue"] for t in listed}
    s3 = moto.client("s3")
    bucket_keys = {}
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket["Name"])[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
        except s3.exceptions.ClientError:
            continue
        default = rules[0]["ApplyServerSideEncryptionByDefault"]
        if default.get("SSEAlgorithm") == "aws:kms":
            bucket_keys[bucket["Name"]] = default["KMSMasterKeyID"]
    boundaries = {}
    iam = moto.client("iam")
    for name in roles:
        role = iam.get_role(RoleName=name)["Role"]
        if "PermissionsBoundary" in role:
            boundaries[name] = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
    return Account(ACCOUNT_ID, REGION, "aws", boundaries, bucket_keys, tags)


@pytest.fixture(scope="module")
def resource_policies(aws_world: World) -> dict[str, dict[str, Any]]:
    """Resource policies requests are also evaluated against: KMS key policies, bucket policies."""
    moto = aws_world.moto
    found: dict[str, dict[str, Any]] = {}
    kms = moto.client("kms")
    for key in kms.list_keys()["Keys"]:
        found[key["KeyArn"]] = json.loads(
            kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
        )
    s3 = moto.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            policy = s3.get_bucket_policy(Bucket=bucket["Name"])["Policy"]
        except s3.exceptions.ClientError:
            continue
        found[f"arn:aws:s3:::{bucket['Name']}"] = json.loads(policy)
    return found


# --- Evaluation and the report ------------------------------------------------------------------

_REPORT_SECTIONS: dict[str, list[Decision]] = {}
_REPORT_SECONDS: dict[str, float] = {}


def check(
    path: str,
    calls: list[AwsCall],
    role: Role,
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
    policies: dict[str, dict[str, Any]] | None = None,
) -> list[Decision]:
    """Evaluate every request the calls cause as `role`; fail listing each one not allowed."""
    assert calls, f"{path}: no AWS call was recorded (is the path pointed at moto?)"
    requests = requests_for(calls, account)
    decisions = evaluate(
        requests,
        policies if policies is not None else role.policies,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/{path.replace(' ', '-')}",
        ACCOUNT_ID,
        resource_policies,
        role.boundary,
    )
    if policies is None:
        _REPORT_SECTIONS[f"{path} as {role.name}"] = decisions
        _write_report()
    denied = [d for d in decisions if not d.allowed]
    if denied:
        lines = "\n".join(f"  {d.describe()}" for d in denied)
        pytest.fail(f"{path}: {len(denied)} request(s) without an Allow for {role.name}:\n{lines}")
    return decisions


def _write_report() -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    out = ["# Recorded AWS calls and the IAM requests they need", ""]
    out += ["Written by tests/integration/test_iam_least_privilege.py; every row was Allowed.", ""]
    out += ["Seconds of the world's make targets: " + json.dumps(_REPORT_SECONDS), ""]
    for section, decisions in _REPORT_SECTIONS.items():
        out += [f"## {section}", "", "| call | IAM request | context | why | decision |"]
        out += ["| --- | --- | --- | --- | --- |"]
        for d in decisions:
            r = d.request
            ctx = ", ".join(
                f"{k}={v}" for k, v in sorted(r.context.items()) if not k.startswith("aws:Re")
            )
            out.append(
                f"| {r.call} | `{r.action}` on `{d.resource}` | {ctx} | {r.reason} | {d.result} |"
            )
        out.append("")
    REPORT.write_text("\n".join(out))


# --- Python paths -------------------------------------------------------------------------------


@pytest.fixture
def as_identity(aws_world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point boto3 at moto as `key` (an access key id): what a role's session looks like."""

    def use(key: str) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws_world.moto.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")  # moto's dummy credentials
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)

    return use


def push_path(repository: str, tag: str) -> str:
    """Push a one-layer image to `repository` as :<tag>, then tag it release-<tag>; return the
    digest. The ECR API operations docker's push performs (same IAM actions)."""
    import boto3

    ecr = boto3.client("ecr")
    ecr.get_authorization_token()
    layer = f"layer of {repository}:{tag}".encode()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=[layer_digest])
    upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repository,
        uploadId=upload,
        partFirstByte=0,
        partLastByte=len(layer) - 1,
        layerPartBlob=layer,
    )
    ecr.complete_layer_upload(
        repositoryName=repository, uploadId=upload, layerDigests=[layer_digest]
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(layer),
                "digest": layer_digest,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": layer_digest,
                }
            ],
        }
    )
    ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    # A release references the image by a second, immutable tag that the lifecycle keeps.
    image = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    ecr.put_image(
        repositoryName=repository,
        imageManifest=image["images"][0]["imageManifest"],
        imageTag=f"release-{tag}",
    )
    found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    return str(found["imageDetails"][0]["imageDigest"])


def deploy_path(cluster: str, service: str, family: str, image_uri: str) -> None:
    """The ECS/ECR calls `mlops deploy` makes (ml/deploy/transaction.py, in its order): the image
    exists, the running revision and its image, a revision of the family's latest revision with
    the new image (and the family's tags), the service update, one look at the rollout."""
    import boto3

    from ml.adapters import ecs
    from ml.deploy import rollout
    from ml.deploy.ecr import ensure_in_ecr

    ecs_client, ecr = boto3.client("ecs"), boto3.client("ecr")
    ref = ecs.ServiceRef(cluster, service)
    ensure_in_ecr(ecr, image_uri)
    running = ecs.current_task_definition(ecs_client, ref)
    rollout.container_image(ecs_client, running)
    new, _ = rollout.register_from_latest(ecs_client, family, image_uri)
    if ecs.current_task_definition(ecs_client, ref) != new:
        ecs.update_service(ecs_client, ref, new)
    rollout.observe(ecs_client, ref, new)


@pytest.fixture(scope="module")
def released(aws_world: World) -> dict[str, str]:
    """Names from the world's outputs."""
    platform, staging = aws_world.outputs["platform"], aws_world.outputs["staging"]
    return {
        "serve_repository": platform["ecr_serve_repository_url"]["value"],
        "mlflow_repository": platform["ecr_mlflow_repository_url"]["value"],
        "cluster": staging["ecs_cluster"]["value"],
        "service": staging["ecs_service"]["value"],
        "family": staging["ecs_task_definition_family"]["value"],
        "mlflow_cluster": platform["mlflow_ecs_cluster"]["value"],
        "mlflow_service": platform["mlflow_ecs_service"]["value"],
        "mlflow_family": platform["mlflow_task_definition_family"]["value"],
    }


@pytest.fixture(scope="module")
def push_calls(aws_world: World, released: dict[str, str]) -> dict[str, list[AwsCall]]:
    """Both images pushed once by the release identity (module scope: deploys need them)."""
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        )
    }
    os.environ.update(
        AWS_ENDPOINT_URL=aws_world.moto.url,
        AWS_ACCESS_KEY_ID="AKIARELEASE",
        AWS_SECRET_ACCESS_KEY="testing",  # moto's dummy credentials
        AWS_DEFAULT_REGION=REGION,
    )
    try:
        calls = {}
        for name in ("serve", "mlflow"):
            url = released[f"{name}_repository"]
            with BotocoreRecorder() as recorder:
                push_path(url.split("/", 1)[1], GIT_SHA)
            calls[name] = recorder.calls
        return calls
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_image_push_is_allowed_by_the_release_role(
    push_calls: dict[str, list[AwsCall]],
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    # Given the release role terraform rendered, when both images were pushed and tagged
    release = _role(roles, "credit-risk-github-release")
    for name, calls in push_calls.items():
        # Then every call was allowed, and the push really used the layer-upload operations
        decisions = check(f"image push ({name})", calls, release, account, resource_policies)
        actions = {d.request.action for d in decisions}
        assert {"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:PutImage"} <= actions


def test_deploy_path_is_allowed_by_the_environment_deploy_role(
    push_calls: dict[str, list[AwsCall]],
    released: dict[str, str],
    as_identity: Callable[[str], None],
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    # Given the serve image pushed, and the staging deploy role with its boundary
    as_identity("AKIADEPLOYSTAGING")
    deploy = _role(roles, "credit-risk-staging-github-deploy")
    assert deploy.boundary is not None, "the deploy role must carry the environment's boundary"
    image = f"{released['serve_repository']}:{GIT_SHA}"

    # When the deploy path runs against staging's service
    with BotocoreRecorder() as recorder:
        deploy_path(released["cluster"], released["service"], released["family"], image)

    # Then every call is allowed, including what AWS checks besides the calls themselves
    decisions = check("deploy (staging)", recorder.calls, deploy, account, resource_policies)
    needed = {(d.request.action, d.request.reason != "the call itself") for d in decisions}
    assert ("ecs:TagResource", True) in needed, "the revision was registered without tags?"
    assert ("iam:PassRole", True) in needed


def test_the_data_in_remote_gate_is_allowed_and_cannot_read_the_data(
    aws_world: World,
    as_identity: Callable[[str], None],
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    from ml.adapters import dvc

    # Given one DVC object in the platform's remote (SSE-KMS by the bucket's default), the other
    # md5 never pushed
    remote = aws_world.outputs["platform"]["dvc_remote_url"]["value"]
    bucket, prefix = remote.removeprefix("s3://").split("/", 1)
    assert account.bucket_kms_keys.get(bucket), "the remote's bucket is not SSE-KMS"
    present, missing = "ab" + "0" * 30, "cd" + "1" * 30
    s3 = aws_world.moto.client("s3")
    # moto's endpoint is plain HTTP and it enforces the bucket's deny of non-TLS requests: the
    # policy is lifted for the calls and put back; the evaluation applies it (as `mlflow_on_s3`)
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/files/md5/ab/{present[2:]}", Body=b"data")
        # When `mlops deploy`'s data-in-remote gate asks for both as staging's deploy role
        as_identity("AKIADEPLOYSTAGING")
        with BotocoreRecorder() as recorder:
            assert dvc.remote_has(remote, present) is True
            assert dvc.remote_has(remote, missing) is False
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    deploy = _role(roles, "credit-risk-staging-github-deploy")
    # Then both HEADs are allowed, and none needs the key: HEAD decrypts nothing
    decisions = check("data-in-remote gate", recorder.calls, deploy, account, resource_policies)
    assert {d.request.action for d in decisions} == {"s3:GetObject"}
    # and the role cannot read the data itself: kms:Decrypt on the bucket's key is not allowed
    (head, *_) = recorder.calls
    decrypt = IamRequest("kms:Decrypt", account.bucket_kms_keys[bucket], {}, head, "read")
    (verdict,) = evaluate(
        [decrypt],
        deploy.policies,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{deploy.name}/gate",
        ACCOUNT_ID,
        resource_policies,
        deploy.boundary,
    )
    assert not verdict.allowed


def test_mlflow_deploy_is_allowed_by_the_release_role(
    push_calls: dict[str, list[AwsCall]],
    released: dict[str, str],
    as_identity: Callable[[str], None],
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    as_identity("AKIARELEASE")
    image = f"{released['mlflow_repository']}:{GIT_SHA}"
    with BotocoreRecorder() as recorder:
        deploy_path(
            released["mlflow_cluster"], released["mlflow_service"], released["mlflow_family"], image
        )
    release = _role(roles, "credit-risk-github-release")
    check("MLflow deploy", recorder.calls, release, account, resource_policies)


def test_a_policy_without_ecs_tag_resource_fails_the_deploy_path(
    push_calls: dict[str, list[AwsCall]],
    released: dict[str, str],
    as_identity: Callable[[str], None],
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    # Given an image of a newer commit (so the deploy registers a new, tagged revision: the
    # latest one already runs GIT_SHA's image after the test above)
    as_identity("AKIARELEASE")
    newer = "1f" * 20
    push_path(released["serve_repository"].split("/", 1)[1], newer)
    # and the deploy role's rendered policy with ecs:TagResource taken out (a deploy once failed
    # on exactly this)
    as_identity("AKIADEPLOYSTAGING")
    deploy = _role(roles, "credit-risk-staging-github-deploy")
    stripped = json.loads(json.dumps(deploy.policies))
    for document in stripped.values():
        for statement in document["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            statement["Action"] = [a for a in actions if a != "ecs:TagResource"] or [
                "ecs:ListClusters"
            ]
    image = f"{released['serve_repository']}:{newer}"
    with BotocoreRecorder() as recorder:
        deploy_path(released["cluster"], released["service"], released["family"], image)
    assert "RegisterTaskDefinition" in {c.operation for c in recorder.calls}

    # When the same calls are evaluated, then the test fails, naming the missing action
    with pytest.raises(pytest.fail.Exception, match=r"ecs:TagResource .*RegisterTaskDefinition"):
        check(
            "deploy without TagResource",
            recorder.calls,
            deploy,
            account,
            resource_policies,
            stripped,
        )


# --- Promotion: the model's artefacts, read through the MLflow server --------------------------


@pytest.fixture(scope="module")
def mlflow_on_s3(
    aws_world: World,
    resource_policies: dict[str, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`mlflow server --serve-artifacts` whose artefacts live in the platform's bucket in moto,
    running as the MLflow task role would (access key AKIAMLFLOWTASK).

    moto enforces the bucket policy's deny of non-TLS requests, and its endpoint is plain HTTP:
    the policy is lifted from moto while the server runs (and put back after). The evaluation
    still applies it, with aws:SecureTransport true as on AWS (`resource_policies`, read before).
    """
    bucket = aws_world.outputs["platform"]["mlflow_artifact_bucket"]["value"]
    assert f"arn:aws:s3:::{bucket}" in resource_policies, "the artefact bucket has no policy?"
    s3 = aws_world.moto.client("s3")
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    base = tmp_path_factory.mktemp("mlflow-s3")
    port = free_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAMLFLOWTASK",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": aws_world.moto.url,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    log = base / "server.log"
    mlflow = Path(sys.executable).parent / "mlflow"
    args = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}"]
    args += ["--artifacts-destination", f"s3://{bucket}/artifacts", "--serve-artifacts"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def test_promotion_reads_artefacts_only_through_the_mlflow_task_role(
    aws_world: World,
    mlflow_on_s3: str,
    tmp_path: Path,
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    # Given a model version whose files were logged through the server (training's writes)
    client = MlflowClient(tracking_uri=mlflow_on_s3, registry_uri=mlflow_on_s3)
    experiment = client.create_experiment("iam-promotion")
    run = client.create_run(experiment)
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "model.bin").write_bytes(os.urandom(2048))
    client.log_artifacts(run.info.run_id, str(model), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("credit-risk-iam")
    version = client.create_model_version(
        "credit-risk-iam", f"runs:/{run.info.run_id}/model", run.info.run_id
    )
    writes = [c for c in aws_world.moto.calls() if c.access_key == "AKIAMLFLOWTASK"]

    # When promotion loads the version's files (what the gates' loadable/canary checks read)
    target = tmp_path / "download"
    target.mkdir()
    source = client.get_model_version_download_uri("credit-risk-iam", version.version)
    download_artifacts(artifact_uri=source, dst_path=str(target), tracking_uri=mlflow_on_s3)
    downloaded = list(target.rglob("model.bin"))
    assert len(downloaded) == 1
    assert downloaded[0].stat().st_size == 2048
    calls = [c for c in aws_world.moto.calls() if c.access_key == "AKIAMLFLOWTASK"]
    reads = calls[len(writes) :]

    # Then only the MLflow server touched S3, and its task role allows every call
    task = _role(roles, "credit-risk-mlflow-task")
    assert {c.operation for c in reads} & {"GetObject", "HeadObject"}, reads
    check("promotion: artefact reads (MLflow server)", reads, task, account, resource_policies)
    check("training: artefact writes (MLflow server)", writes, task, account, resource_policies)


# --- terraform ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "role"),
    [
        ("terraform-platform", "credit-risk-github-terraform-platform"),
        ("terraform-staging", "credit-risk-github-terraform-staging"),
        ("plan-platform", "credit-risk-github-plan-platform"),
        ("plan-staging", "credit-risk-github-plan-staging"),
        ("plan-production", "credit-risk-github-plan-production"),
    ],
)
def test_terraform_of_each_root_is_allowed_by_its_role(
    aws_world: World,
    identity: str,
    role: str,
    roles: dict[str, Role],
    account: Account,
    resource_policies: dict[str, dict[str, Any]],
) -> None:
    # Given what terraform called for the root (plan + apply, or the pull request's plan)
    calls = aws_world.calls(identity)
    # Then the root's role allows all of it (state included: the S3 backend was moto too)
    check(f"terraform ({identity})", calls, _role(roles, role), account, resource_policies)


def _allowed(
    role: Role, requests: list[IamRequest], resource_policies: dict[str, Any]
) -> list[bool]:
    decisions = evaluate(
        requests,
        role.policies,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/probe",
        ACCOUNT_ID,
        resource_policies,
        role.boundary,
    )
    return [d.allowed for d in decisions]


def test_roles_hold_nothing_beyond_their_root_and_environment(
    aws_world: World, roles: dict[str, Role], resource_policies: dict[str, dict[str, Any]]
) -> None:
    # Given the secrets, the artefact bucket and the states terraform created
    platform, staging = aws_world.outputs["platform"], aws_world.outputs["staging"]
    token = staging["api_token_secret_arn"]["value"]
    admin = platform["mlflow_admin_secret_arn"]["value"]
    artefact = f"arn:aws:s3:::{platform['mlflow_artifact_bucket']['value']}/artifacts/1/model.bin"
    state = "arn:aws:s3:::acme-terraform-state/credit-risk/{}/terraform.tfstate"
    prod = "credit-risk-production"
    prod_service = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/{prod}/{prod}-api"

    def request(action: str, resource: str, **context: Any) -> IamRequest:
        return IamRequest(action, resource, context)

    probes = {
        # Plan roles (pull requests): no secret value, no model file, no other root's state.
        "credit-risk-github-plan-staging": [
            request("secretsmanager:GetSecretValue", token),
            request("s3:GetObject", artefact),
            request("s3:GetObject", state.format("production")),
            request("s3:PutObject", state.format("staging")),
        ],
        "credit-risk-github-plan-platform": [
            request("secretsmanager:GetSecretValue", admin),
            request("s3:GetObject", artefact),
            request("s3:GetObject", state.format("staging")),
        ],
        # The staging apply role cannot reach production, read values or mint free roles.
        "credit-risk-github-terraform-staging": [
            request("ecs:UpdateService", prod_service),
            request("s3:GetObject", state.format("production")),
            request("secretsmanager:GetSecretValue", token),
            request("iam:CreateRole", f"arn:aws:iam::{ACCOUNT_ID}:role/credit-risk-staging-x"),
            request("s3:GetObject", artefact),
        ],
        # The deploy role deploys its own service only.
        "credit-risk-staging-github-deploy": [
            request("ecs:UpdateService", prod_service),
            request(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT_ID}:role/credit-risk-github-terraform-platform",
                **{"iam:PassedToService": "ecs-tasks.amazonaws.com"},
            ),
            request("s3:GetObject", artefact),
            request("secretsmanager:GetSecretValue", token),
        ],
        "credit-risk-github-release": [
            request("s3:GetObject", artefact),
            request("ecs:UpdateService", prod_service),
            request(
                "ecr:BatchDeleteImage",
                f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/credit-risk/serve",
            ),
        ],
    }
    for name, requests in probes.items():
        # Then each of those requests is denied
        allowed = _allowed(_role(roles, name), requests, resource_policies)
        leaks = [r.describe() for r, ok in zip(requests, allowed, strict=True) if ok]
        assert not leaks, f"{name} is allowed more than it needs: {leaks}"


# --- only the production path changes what production serves -----------------------------------


def _production_requests() -> list[IamRequest]:
    """What changing production's serving takes: a new revision of its family (tagged, naming
    its task role) and a service update to it (names as production's root makes them)."""
    prod = "credit-risk-production"
    ecs = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}"
    family = f"{ecs}:task-definition/{prod}-api:7"
    return [
        IamRequest("ecs:UpdateService", f"{ecs}:service/{prod}/{prod}-api"),
        IamRequest("ecs:RegisterTaskDefinition", family),
        IamRequest("ecs:TagResource", family, {"ecs:CreateAction": "RegisterTaskDefinition"}),
        IamRequest(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT_ID}:role/{prod}-a-task-20300101000000000000000001",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "credit-risk-staging-github-deploy",  # staging's deploy role (environment staging)
        "credit-risk-github-release",  # CD's release jobs (environment release)
        "credit-risk-github-train",  # retrain (environment retrain)
    ],
)
def test_staging_and_release_identities_are_denied_production_serving(
    name: str, roles: dict[str, Role], resource_policies: dict[str, dict[str, Any]]
) -> None:
    # Given the role as terraform rendered it, with its boundary if it has one
    role = _role(roles, name)
    requests = _production_requests()
    decisions = evaluate(
        requests,
        role.policies,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/production-probe",
        ACCOUNT_ID,
        resource_policies,
        role.boundary,
    )
    # Then every request that would change what production serves is denied, explicitly: an
    # Allow added to the role later cannot undo it
    results = {d.request.action: d.result for d in decisions}
    assert results == dict.fromkeys(
        ("ecs:UpdateService", "ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"),
        "ExplicitlyDenied",
    ), results
    widened = {
        **role.policies,
        "too_broad": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["ecs:*", "iam:PassRole"], "Resource": "*"}
            ],
        },
    }
    again = evaluate(
        requests,
        widened,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/production-probe",
        ACCOUNT_ID,
        resource_policies,
        None,  # not even the boundary: the role's own Deny holds
    )
    assert not [d.describe() for d in again if d.allowed]


def test_the_deny_does_not_touch_the_roles_own_work(
    roles: dict[str, Role], resource_policies: dict[str, dict[str, Any]]
) -> None:
    # Given the staging deploy role, with the same probe pointed at staging's own service
    role = _role(roles, "credit-risk-staging-github-deploy")
    staging = [
        IamRequest(r.action, r.resource.replace("credit-risk-production", "credit-risk-staging"),
                   r.context)
        for r in _production_requests()
    ]  # fmt: skip
    decisions = evaluate(
        staging,
        role.policies,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.name}/probe",
        ACCOUNT_ID,
        resource_policies,
        role.boundary,
    )
    # Then updating and registering staging's own stays allowed (the probe is not vacuous)
    allowed = {d.request.action for d in decisions if d.allowed}
    assert {"ecs:UpdateService", "ecs:RegisterTaskDefinition", "ecs:TagResource"} <= allowed


def test_production_s_deploy_role_alone_lacks_the_deny(aws_world: World) -> None:
    """The production root renders its deploy role without `never_production` (it is the one
    allowed path; its trust, environment production on main only, is checked by
    tests/integration/test_terraform_moto.py::test_oidc_trust_binds_repository_environment_and_main),
    staging's with it."""

    def deploy_policies(plan: dict[str, Any]) -> set[str]:
        found: set[str] = set()

        def walk(module: dict[str, Any]) -> None:
            for resource in module.get("resources", []):
                if resource["address"].startswith("module.role_deploy.aws_iam_role_policy.this"):
                    found.add(str(resource["index"]))
            for child in module.get("child_modules", []):
                walk(child)

        walk(plan["planned_values"]["root_module"])
        return found

    assert deploy_policies(aws_world.plans["production"]) == {"deploy"}
    assert deploy_policies(aws_world.plans["staging"]) == {"deploy", "never_production"}


# --- the online feature store (terraform_roles_feature_store.tf) --------------------------------


def _feature_store_requests(env: str, token: str, key: str) -> list[IamRequest]:
    """What terraform's AWS provider asks for to create, read, change and destroy an
    environment's feature store (modules/feature_store), as IAM requests. ElastiCache cannot be
    applied on moto (no parameter groups), so these are written out from the provider's calls
    instead of recorded: CreateCacheSubnetGroup, CreateCacheParameterGroup +
    ModifyCacheParameterGroup (noeviction), CreateReplicationGroup (encrypted, with a token, its
    tags, the platform key's grant), the Describe/ListTags reads of refresh, a replica change and
    the deletes; plus the token the module's data source reads."""
    prefix = f"credit-risk-{env}"
    arn = f"arn:aws:elasticache:{REGION}:{ACCOUNT_ID}"
    group = f"{arn}:replicationgroup:{prefix}-features"
    params = f"{arn}:parametergroup:{prefix}-features-redis7"
    subnets = f"{arn}:subnetgroup:{prefix}-features"
    node = f"{arn}:cluster:{prefix}-features-001"
    encrypted = {
        "elasticache:TransitEncryptionEnabled": "true",
        "elasticache:AtRestEncryptionEnabled": "true",
        "elasticache:AuthTokenEnabled": "true",
    }
    via = {"kms:ViaService": f"elasticache.{REGION}.amazonaws.com"}
    out = [IamRequest("secretsmanager:GetSecretValue", token)]
    for resource, create, modify, delete in (
        (subnets, "CreateCacheSubnetGroup", "ModifyCacheSubnetGroup", "DeleteCacheSubnetGroup"),
        (params, "CreateCacheParameterGroup", "ModifyCacheParameterGroup",
         "DeleteCacheParameterGroup"),
    ):  # fmt: skip
        out += [
            IamRequest(f"elasticache:{create}", resource),
            IamRequest("elasticache:AddTagsToResource", resource),
            IamRequest("elasticache:ListTagsForResource", resource),
            IamRequest(f"elasticache:{modify}", resource),
            IamRequest(f"elasticache:{delete}", resource),
        ]
    out += [
        IamRequest("elasticache:DescribeCacheSubnetGroups", subnets),
        IamRequest("elasticache:DescribeCacheParameterGroups", params),
        IamRequest("elasticache:DescribeCacheParameters", params),
        # The condition keys come with the replication group only (the service's reference).
        IamRequest("elasticache:CreateReplicationGroup", group, encrypted),
        *(IamRequest("elasticache:CreateReplicationGroup", r) for r in (params, subnets, node)),
        IamRequest("elasticache:AddTagsToResource", group),
        IamRequest("kms:CreateGrant", key, via),
        IamRequest("kms:DescribeKey", key, via),
        IamRequest(
            "iam:CreateServiceLinkedRole",
            f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/elasticache.amazonaws.com/"
            "AWSServiceRoleForElastiCache",
            {"iam:AWSServiceName": "elasticache.amazonaws.com"},
        ),
        IamRequest("elasticache:DescribeReplicationGroups", group),
        IamRequest("elasticache:DescribeCacheClusters", node),
        IamRequest("elasticache:ListTagsForResource", group),
        IamRequest("elasticache:ModifyReplicationGroup", group),
        IamRequest("elasticache:IncreaseReplicaCount", group),
        IamRequest("elasticache:DecreaseReplicaCount", group),
        IamRequest("elasticache:RemoveTagsFromResource", group),
        IamRequest("elasticache:DeleteReplicationGroup", group),
    ]  # fmt: skip
    return out


def _platform_key(resource_policies: dict[str, dict[str, Any]]) -> str:
    """The platform key (encryption at rest of the store): the key whose policy lets CloudWatch
    Logs use it (modules/kms)."""
    keys = [
        arn
        for arn, policy in resource_policies.items()
        if ":key/" in arn and "CloudWatchLogsUseForThisAccount" in json.dumps(policy)
    ]
    assert len(keys) == 1, f"expected the platform KMS key, found {keys}"
    return keys[0]


def test_the_feature_store_s_terraform_and_token_are_allowed_to_its_environment_only(
    aws_world: World, roles: dict[str, Role], resource_policies: dict[str, dict[str, Any]]
) -> None:
    # Given the staging feature store's token secret, named as the stack names it
    secrets = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret"
    token = f"{secrets}:credit-risk-staging/feature-store-token-AbCdEf"
    key = _platform_key(resource_policies)
    staging = _feature_store_requests("staging", token, key)
    policies = resource_policies
    apply_role = _role(roles, "credit-risk-github-terraform-staging")

    # Then staging's apply role may create, change and destroy it, and read its token
    allowed = _allowed(apply_role, staging, policies)
    denied = [r.describe() for r, ok in zip(staging, allowed, strict=True) if not ok]
    assert not denied, f"the staging apply role lacks: {denied}"
    # And staging's plan role may refresh it (reads and the token, nothing else)
    plan_role = _role(roles, "credit-risk-github-plan-staging")
    plan_reads = ("elasticache:Describe", "elasticache:List")
    reads = [r for r in staging if r.action.startswith(plan_reads)]
    reads.append(IamRequest("secretsmanager:GetSecretValue", token))
    allowed = _allowed(plan_role, reads, policies)
    assert all(allowed), [r.describe() for r, ok in zip(reads, allowed, strict=True) if not ok]
    writes = [r for r in staging if r not in reads and not r.action.startswith(("kms:", "iam:"))]
    assert not any(_allowed(plan_role, writes, policies))

    # But an unencrypted store (or one without a token) is refused
    group = next(r for r in staging if r.action == "elasticache:CreateReplicationGroup")
    for flag in group.context:
        weaker = IamRequest(group.action, group.resource, {**group.context, flag: "false"})
        assert _allowed(apply_role, [weaker], policies) == [False], flag
    # And production's store and token are out of staging's reach
    prod_token = token.replace("credit-risk-staging", "credit-risk-production")
    production = _feature_store_requests("production", prod_token, key)
    ours = [r for r in production if not r.action.startswith(("kms:", "iam:"))]
    allowed = _allowed(apply_role, ours, policies)
    leaks = [r.describe() for r, ok in zip(ours, allowed, strict=True) if ok]
    assert not leaks, f"the staging apply role reaches production's store: {leaks}"

    # And the API's tasks can read the token: the execution role's ReadSecrets statement (as
    # modules/ecs_service renders it with the token in secret_arns) within staging's boundary
    execution = Role(
        "credit-risk-staging-api-execution",
        f"arn:aws:iam::{ACCOUNT_ID}:role/credit-risk-staging-api-execution",
        {"secrets": {"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": [token]}]}},
        # Every role staging's root creates carries this boundary (its deploy role too).
        _role(roles, "credit-risk-staging-github-deploy").boundary,
    )  # fmt: skip
    assert execution.boundary is not None
    assert _allowed(execution, [IamRequest("secretsmanager:GetSecretValue", token)], policies) == [
        True
    ]
    assert _allowed(
        execution, [IamRequest("secretsmanager:GetSecretValue", prod_token)], policies
    ) == [False]
