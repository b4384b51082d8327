"""Where the Spark jobs run on AWS, against moto: the EMR Serverless module planned, its role,
bucket and key applied, and the job's AWS calls evaluated against the policy terraform rendered.

infra/terraform/tests/spark_moto is the module in a small VPC with the kms module and a registry
secret. The whole root is planned; the application itself is left out of the apply: moto starts
an application with auto-start at once (state STARTED) where AWS leaves it CREATED, and the
provider waits for CREATED. So the application is checked in the plan (the values terraform
sends) and the role, bucket, key and secret in moto after a targeted apply.

The least-privilege check records what a job does through boto3 (the registry credentials from
Secrets Manager, the training snapshot from input/, a summary into output/) and adds what runs in
the JVM on EMR and cannot run here, named as EMRFS and EMR Serverless make them (listing and
reading the book under input/, writing parts under output/ and deleting the temporary ones,
writing logs/ and the CloudWatch log streams). Each call is mapped to the IAM requests AWS
authorises (tests/fixtures/iam/actions.py; KMS through S3 and Secrets Manager with its
kms:ViaService) and evaluated with @cloud-copilot/iam-simulate against the role's inline policy,
the bucket policy and the key policy as moto holds them. What only a real account shows: that
EMRFS makes no other call (e.g. a HeadBucket), that the VPC reaches the registry and S3, and the
KMS grants at runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools.services import start_moto_server, stop_moto_server
from tests.fixtures.iam.actions import Account, IamRequest, requests_for
from tests.fixtures.iam.calls import AwsCall, BotocoreRecorder
from tests.fixtures.iam.simulate import evaluate
from tests.fixtures.terraform import base_env, plugin_dir, terraform_binary

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
REGION = "us-east-1"
ACCOUNT = "123456789012"
APPLY_TARGETS = (
    "module.spark.aws_iam_role_policy.job",
    # The bucket policy is rendered, not put: moto enforces its TLS-only Deny on our plain-HTTP
    # requests; the evaluation below applies it as a resource policy instead.
    "module.spark.data.aws_iam_policy_document.bucket",
    "module.spark.aws_s3_bucket_server_side_encryption_configuration.batch",
)


@dataclass
class World:
    url: str
    name: str
    plan: dict[str, Any]
    outputs: dict[str, Any]
    state: dict[str, Any]

    def resource(self, address: str) -> dict[str, Any]:
        """A resource's (or data source's) values in the applied state."""

        def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
            yield from module.get("resources", [])
            for child in module.get("child_modules", []):
                yield from walk(child)

        for found in walk(self.state["values"]["root_module"]):
            if found["address"] == address:
                return dict(found["values"])
        raise KeyError(address)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("spark-infra")
    terraform = terraform_binary()
    server = start_moto_server(tmp / "moto.log")
    try:
        shutil.copytree(TF_DIR / "modules", tmp / "modules")
        workdir = tmp / "tests" / "spark_moto"
        shutil.copytree(TF_DIR / "tests" / "spark_moto", workdir)
        env = base_env(tmp, "AKIASPARKROOT")
        name = f"sp-{uuid.uuid4().hex[:6]}"
        tf_vars = ["-var", f"endpoint_url={server.url}", "-var", f"name={name}"]
        mirror = [f"-plugin-dir={plugin_dir()}"] if plugin_dir() else []
        _run([terraform, "init", "-no-color", *mirror], workdir, env)
        _run([terraform, "plan", "-no-color", "-out=spark.tfplan", *tf_vars], workdir, env)
        plan = json.loads(_run([terraform, "show", "-json", "spark.tfplan"], workdir, env))
        targets = [f"-target={t}" for t in APPLY_TARGETS]
        _run([terraform, "apply", "-no-color", "-auto-approve", *targets, *tf_vars], workdir, env)
        outputs = {
            k: v["value"]
            for k, v in json.loads(_run([terraform, "output", "-json"], workdir, env)).items()
        }
        state = json.loads(_run([terraform, "show", "-json"], workdir, env))
        yield World(server.url, name, plan, outputs, state)
    finally:
        stop_moto_server(server)


def _planned(plan: dict[str, Any], address: str) -> dict[str, Any]:
    (change,) = [c for c in plan["resource_changes"] if c["address"] == address]
    assert change["change"]["actions"] == ["create"]
    return dict(change["change"]["after"]) | {"_unknown": change["change"]["after_unknown"]}


def test_the_plan_holds_the_emr_serverless_application(world: World) -> None:
    app = _planned(world.plan, "module.spark.aws_emrserverless_application.this")
    assert app["name"] == f"{world.name}-batch"
    assert app["release_label"].startswith("emr-7.")  # Spark 3.5: the `spark` extra's pyspark
    assert (app["type"].upper(), app["architecture"]) == ("SPARK", "ARM64")
    assert app["maximum_capacity"] == [{"cpu": "64 vCPU", "memory": "256 GB", "disk": "1000 GB"}]
    assert app["auto_start_configuration"] == [{"enabled": True}]
    assert app["auto_stop_configuration"] == [{"enabled": True, "idle_timeout_minutes": 15}]
    # In the private subnets, behind its own security group (IDs known after apply: the
    # configuration says where they come from)
    config = world.plan["configuration"]["root_module"]["module_calls"]["spark"]
    assert config["expressions"]["subnet_ids"]["references"][-1] == "aws_subnet.private"
    (resource,) = [
        r for r in config["module"]["resources"] if r["type"] == "aws_emrserverless_application"
    ]
    (network,) = resource["expressions"]["network_configuration"]
    assert network["subnet_ids"]["references"] == ["var.subnet_ids"]
    assert network["security_group_ids"]["references"][-1] == "aws_security_group.jobs"
    role = _planned(world.plan, "module.spark.aws_iam_role.job")
    assert role["name"] == f"{world.name}-batch-job"


def test_the_job_role_trusts_emr_serverless_of_this_account_only(world: World) -> None:
    role = world.client("iam").get_role(RoleName=world.outputs["job_role_name"])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(urllib.parse.unquote(trust))
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "emr-serverless.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def _policies(world: World) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The role's inline policies and the resource policies (bucket, key) as moto holds them."""
    iam = world.client("iam")
    role = world.outputs["job_role_name"]
    identity = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        identity[name] = (
            json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
        )
    bucket = world.outputs["bucket_name"]
    key = world.outputs["kms_key_arn"]
    resources = {
        f"arn:aws:s3:::{bucket}": json.loads(
            world.resource("module.spark.data.aws_iam_policy_document.bucket")["json"]
        ),
        key: json.loads(
            world.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        ),
    }
    return identity, resources


def _job_calls(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[AwsCall]:
    """What a training job does through boto3, recorded, plus what EMRFS and EMR do for it."""
    from ml.data import ingest
    from ml.spark.entry import registry_credentials

    bucket, secret = world.outputs["bucket_name"], world.outputs["registry_secret_arn"]
    csv = (ROOT / "data" / "uci_credit_card.csv.gz").read_bytes()
    s3 = world.client("s3")
    s3.put_object(Bucket=bucket, Key="input/snapshots/2026-11.csv.gz", Body=csv)
    world.client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString=json.dumps({"username": "batch-reader", "password": "x"})
    )
    for key, value in {
        "AWS_ENDPOINT_URL": world.url,
        "AWS_ACCESS_KEY_ID": "AKIASPARKJOB",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    import gzip
    import hashlib

    sha = hashlib.sha256(gzip.decompress(csv)).hexdigest()
    with BotocoreRecorder() as recorder:
        assert registry_credentials(secret, REGION) == ("batch-reader", "x")
        frame, _ = ingest(f"s3://{bucket}/input/snapshots/2026-11.csv.gz", sha)
        assert len(frame) == 30_000
        boto3.client("s3").put_object(
            Bucket=bucket, Key="output/2026-12-06/summary.json", Body=b"{}"
        )
    recorded = [c for c in recorder.calls if c.service != "sts"]
    assert {c.operation for c in recorded} >= {"GetSecretValue", "GetObject", "PutObject"}
    emrfs = [
        AwsCall("s3", "ListObjectsV2", {"Bucket": bucket, "prefix": "input/book/"}),
        AwsCall("s3", "GetObject", {"Bucket": bucket, "Key": "input/book/part-00000.parquet"}),
        AwsCall("s3", "ListObjectsV2", {"Bucket": bucket, "prefix": "output/2026-12-06/"}),
        AwsCall("s3", "PutObject", {"Bucket": bucket, "Key": "output/2026-12-06/_temporary/p"}),
        AwsCall("s3", "DeleteObject", {"Bucket": bucket, "Key": "output/2026-12-06/_temporary/p"}),
        AwsCall("s3", "AbortMultipartUpload", {"Bucket": bucket, "Key": "output/2026-12-06/x"}),
        AwsCall("s3", "GetObject", {"Bucket": bucket, "Key": "code/venv.tar.gz"}),
        AwsCall("s3", "PutObject", {"Bucket": bucket, "Key": "logs/applications/a/jobs/j/x.gz"}),
    ]
    return recorded + [AwsCall(c.service, c.operation, c.params, None, REGION) for c in emrfs]


def _requests(world: World, calls: list[AwsCall]) -> list[IamRequest]:
    """The IAM requests of the calls; KMS requests carry the service they come through."""
    key = world.outputs["kms_key_arn"]
    account = Account(ACCOUNT, REGION, bucket_kms_keys={world.outputs["bucket_name"]: key})
    out = []
    for request in requests_for(calls, account):
        if request.action.startswith("kms:") and request.call is not None:
            via = f"{request.call.service}.{REGION}.amazonaws.com"
            request = IamRequest(
                request.action, request.resource, {**request.context, "kms:ViaService": via},
                request.call, request.reason,
            )  # fmt: skip
        out.append(request)
        if request.call is not None and request.call.operation == "GetSecretValue":
            # The secret is encrypted with the platform key: Secrets Manager decrypts it as the
            # caller (Secrets Manager user guide, "Secret encryption and decryption").
            out.append(
                IamRequest(
                    "kms:Decrypt", key,
                    {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
                    request.call, "the secret is encrypted with a customer-managed key",
                )
            )  # fmt: skip
    # EMR Serverless writes the driver's and executors' logs to the job's log group as the role
    # (named by log stream: the resource type IAM authorises these actions on).
    stream = (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{world.outputs['log_group_name']}"
        ":log-stream:applications/a/jobs/j/SPARK_DRIVER/stdout"
    )
    out += [
        IamRequest("logs:CreateLogStream", stream, {}, None, "EMR Serverless job logs"),
        IamRequest("logs:PutLogEvents", stream, {}, None, "EMR Serverless job logs"),
    ]
    return out


def test_the_job_role_allows_every_call_of_a_job(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    identity, resources = _policies(world)
    requests = _requests(world, _job_calls(world, monkeypatch, tmp_path))
    decisions = evaluate(
        requests, identity, world.outputs["job_role_arn"], ACCOUNT, resources, None
    )
    denied = [d.describe() for d in decisions if not d.allowed]
    assert denied == []
    assert {d.request.action for d in decisions} >= {
        "secretsmanager:GetSecretValue", "kms:Decrypt", "kms:GenerateDataKey", "s3:GetObject",
        "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "logs:PutLogEvents",
    }  # fmt: skip


def test_the_job_role_is_denied_outside_its_prefixes_secret_and_key(world: World) -> None:
    identity, resources = _policies(world)
    bucket = world.outputs["bucket_name"]
    secret = world.outputs["registry_secret_arn"]
    outside = [
        # Inputs and code are read-only; nothing outside the four prefixes
        IamRequest("s3:PutObject", f"arn:aws:s3:::{bucket}/input/book/part-0.parquet"),
        IamRequest("s3:PutObject", f"arn:aws:s3:::{bucket}/code/entry.py"),
        IamRequest("s3:GetObject", f"arn:aws:s3:::{bucket}/other/x"),
        IamRequest("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": "other/"}),
        # Not MLflow's artefacts (the registry is read through MLflow's API), nor another secret
        IamRequest("s3:GetObject", f"arn:aws:s3:::credit-risk-platform-artifacts-{ACCOUNT}/x"),
        IamRequest("secretsmanager:GetSecretValue", secret.rsplit(":", 1)[0] + ":other-AbCdEf"),
        # The key only through S3, Secrets Manager and CloudWatch Logs
        IamRequest("kms:Decrypt", world.outputs["kms_key_arn"]),
        IamRequest("s3:DeleteBucket", f"arn:aws:s3:::{bucket}"),
    ]
    decisions = evaluate(outside, identity, world.outputs["job_role_arn"], ACCOUNT, resources)
    assert [d.describe() for d in decisions if d.allowed] == []
