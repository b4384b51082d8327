"""Step `state-bucket`: the terraform state bucket: versioning, default encryption, public
access block, TLS-only policy; refuses credentials of another account."""

from __future__ import annotations

import json
import re
from typing import Any

from ml.adapters import aws
from ml.errors import ConfigError, one_line
from ml.platform.bootstrap.recorder import Call, Recorder


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
            session = aws.session(region)
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
        raise ConfigError(f"state bucket {bucket}: {one_line(str(exc))}") from exc


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
