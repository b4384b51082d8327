"""The IAM recorder and mapping (tests/fixtures/iam): what a recorded call turns into.

The integration test (tests/integration/test_iam_least_privilege.py) trusts these pieces to see
every call and to add every check AWS makes besides the call; here each rule is pinned on a
small, known input.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.fixtures.iam.actions import Account, requests_for
from tests.fixtures.iam.calls import AwsCall, BotocoreRecorder, parse_moto_entry

ACCT = Account()
SIGV4 = "AWS4-HMAC-SHA256 Credential=AKIAWHO/20260101/us-east-1/{}/aws4_request, SignedHeaders=host"


def _entry(service: str, method: str, url: str, body: Any = "", **headers: str) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    return {
        "method": method,
        "url": url,
        "headers": {"Authorization": SIGV4.format(service), **headers},
        "body": base64.b64encode(raw.encode()).decode(),
        "body_encoded": True,
    }


# --- parsing moto's recording ------------------------------------------------------------------


def test_json_protocol_calls_are_named_by_their_target() -> None:
    entry = _entry(
        "ecs",
        "POST",
        "http://127.0.0.1:5000/",
        {"family": "f"},
        **{"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition"},
    )
    call = parse_moto_entry(entry)
    assert call == AwsCall("ecs", "RegisterTaskDefinition", {}, "AKIAWHO", "us-east-1")
    assert call is not None
    assert call.params == {"family": "f"}


def test_query_protocol_calls_are_named_by_their_action() -> None:
    entry = _entry("iam", "POST", "http://h/", "Action=CreateRole&RoleName=r&Version=2010-05-08")
    call = parse_moto_entry(entry)
    assert call is not None
    assert (call.service, call.operation, call.params["RoleName"]) == ("iam", "CreateRole", "r")


@pytest.mark.parametrize(
    ("method", "url", "headers", "operation"),
    [
        ("GET", "http://h/b/k/state?x-id=GetObject", {}, "GetObject"),
        ("PUT", "http://h/b/k.tflock?x-id=PutObject", {"If-None-Match": "*"}, "PutObject"),
        ("HEAD", "http://h/b/k", {}, "HeadObject"),
        ("GET", "http://h/b?list-type=2&prefix=p%2F", {}, "ListObjectsV2"),
        ("GET", "http://h/b?versioning", {}, "GetBucketVersioning"),
        ("PUT", "http://h/b?publicAccessBlock", {}, "PutPublicAccessBlock"),
        ("PUT", "http://h/b", {}, "CreateBucket"),
        ("GET", "http://h/b?inventory", {}, "UNKNOWN GET /b?inventory"),
    ],
)
def test_s3_rest_calls_are_named_like_the_api(
    method: str, url: str, headers: dict[str, str], operation: str
) -> None:
    call = parse_moto_entry(_entry("s3", method, url, **headers))
    assert call is not None
    assert call.operation == operation


def test_unsigned_requests_are_not_calls() -> None:
    assert parse_moto_entry({"method": "GET", "url": "http://h/moto-api/", "headers": {}}) is None


def test_botocore_recorder_sees_clients_created_inside_it() -> None:
    # Given a recorder, and a client created inside it (as the code under test would)
    with BotocoreRecorder() as recorder:
        ecs = boto3.client(
            "ecs",
            region_name="eu-west-1",
            aws_access_key_id="AKIADEPLOY",
            aws_secret_access_key="testing",  # a stub, nothing is sent
        )
        with Stubber(ecs) as stub:
            stub.add_response("describe_services", {"services": []})
            # When it calls AWS
            ecs.describe_services(cluster="c", services=["s"])
    # Then the call is recorded with its parameters and who made it; later clients are not hooked
    assert recorder.calls == [AwsCall("ecs", "DescribeServices", {}, "AKIADEPLOY", "eu-west-1")]
    assert recorder.calls[0].params == {"cluster": "c", "services": ["s"]}
    outside = boto3.client(
        "ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(outside) as stub:
        stub.add_response("describe_services", {"services": []})
        outside.describe_services(cluster="c", services=["s"])
    assert len(recorder.calls) == 1


# --- calls -> IAM requests ---------------------------------------------------------------------


def _register(tags: bool) -> AwsCall:
    params: dict[str, Any] = {
        "family": "credit-risk-staging-api",
        "taskRoleArn": "arn:aws:iam::123456789012:role/task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [],
    }
    if tags:
        params["tags"] = [{"key": "environment", "value": "staging"}]
    return AwsCall("ecs", "RegisterTaskDefinition", params, "AKIA", "us-east-1")


def test_a_tagged_registration_also_needs_tag_resource_and_pass_role() -> None:
    requests = requests_for([_register(tags=True)], ACCT)
    by_action = {r.action: r for r in requests}
    family = "arn:aws:ecs:us-east-1:123456789012:task-definition/credit-risk-staging-api:*"
    assert by_action["ecs:RegisterTaskDefinition"].resource == family
    tag = by_action["ecs:TagResource"]
    assert tag.context["ecs:CreateAction"] == "RegisterTaskDefinition"
    assert tag.context["aws:RequestTag/environment"] == "staging"
    passed = [r for r in requests if r.action == "iam:PassRole"]
    assert sorted(r.resource for r in passed) == [
        "arn:aws:iam::123456789012:role/exec",
        "arn:aws:iam::123456789012:role/task",
    ]
    assert all(r.context["iam:PassedToService"] == "ecs-tasks.amazonaws.com" for r in passed)


def test_an_untagged_registration_needs_no_tag_resource() -> None:
    actions = {r.action for r in requests_for([_register(tags=False)], ACCT)}
    assert "ecs:TagResource" not in actions


def test_elb_create_with_tags_needs_add_tags_with_its_create_action() -> None:
    call = AwsCall(
        "elasticloadbalancing",
        "CreateTargetGroup",
        {"Name": "tg", "Tags.member.1.Key": "environment", "Tags.member.1.Value": "staging"},
        "AKIA",
        "us-east-1",
    )
    requests = requests_for([call], ACCT)
    add_tags = [r for r in requests if r.action == "elasticloadbalancing:AddTags"]
    assert len(add_tags) == 1
    assert add_tags[0].context["elasticloadbalancing:CreateAction"] == "CreateTargetGroup"
    assert requests[0].context["aws:RequestTag/environment"] == "staging"


def test_objects_in_an_sse_kms_bucket_also_need_the_key() -> None:
    account = Account(bucket_kms_keys={"art": "arn:aws:kms:us-east-1:123456789012:key/k"})
    read = AwsCall("s3", "GetObject", {"Bucket": "art", "Key": "artifacts/m"}, "A", "us-east-1")
    write = AwsCall("s3", "PutObject", {"Bucket": "art", "Key": "artifacts/m"}, "A", "us-east-1")
    listing = AwsCall(
        "s3", "ListObjectsV2", {"Bucket": "art", "prefix": "artifacts/"}, "A", "us-east-1"
    )
    pairs = {(r.action, r.resource) for r in requests_for([read, write, listing], account)}
    assert ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k") in pairs
    assert ("kms:GenerateDataKey", "arn:aws:kms:us-east-1:123456789012:key/k") in pairs
    assert ("s3:ListBucket", "arn:aws:s3:::art") in pairs


def test_head_of_an_sse_kms_object_needs_get_object_and_not_the_key() -> None:
    # HEAD returns metadata only: AWS authorizes it as s3:GetObject and decrypts nothing, so an
    # identity without kms:Decrypt can tell that an object exists (the data-in-remote gate)
    account = Account(bucket_kms_keys={"art": "arn:aws:kms:us-east-1:123456789012:key/k"})
    head = AwsCall("s3", "HeadObject", {"Bucket": "art", "Key": "dvc/files/md5/ab/c"}, "A", "r")
    requests = requests_for([head], account)
    assert [(r.action, r.resource) for r in requests] == [
        ("s3:GetObject", "arn:aws:s3:::art/dvc/files/md5/ab/c")
    ]


def test_role_changes_carry_the_role_s_permissions_boundary() -> None:
    boundary = "arn:aws:iam::123456789012:policy/credit-risk-boundary-staging"
    create = AwsCall(
        "iam", "CreateRole", {"RoleName": "r", "PermissionsBoundary": boundary}, "A", None
    )
    put = AwsCall("iam", "PutRolePolicy", {"RoleName": "r", "PolicyName": "p"}, "A", None)
    requests = requests_for([create, put], ACCT)
    assert [r.context.get("iam:PermissionsBoundary") for r in requests] == [boundary, boundary]


def test_calls_needing_no_permission_are_dropped_and_unknown_services_refused() -> None:
    assert requests_for([AwsCall("sts", "GetCallerIdentity")], ACCT) == []
    with pytest.raises(KeyError, match=r"no IAM mapping for lambda\.Invoke"):
        requests_for([AwsCall("lambda", "Invoke")], ACCT)
