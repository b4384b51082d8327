"""The IAM evaluator the least-privilege test relies on (@cloud-copilot/iam-simulate, npm).

Pinned on small documents: an Allow allows, a missing Allow and a failed condition deny, a
permissions boundary caps, a resource policy's Deny wins, and wildcard-only actions are
evaluated against "*". The tool is installed by `make iam-tools` when missing.
"""

from __future__ import annotations

from typing import Any

from tests.fixtures.iam.actions import IamRequest
from tests.fixtures.iam.simulate import evaluate

ACCOUNT = "123456789012"
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/test"
FAMILY = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/api:*"
POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition", "Resource": FAMILY},
        {"Effect": "Allow", "Action": "ecs:DescribeTaskDefinition", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "ecs:TagResource",
            "Resource": FAMILY,
            "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        },
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
    ],
}


def _results(requests: list[IamRequest], **kwargs: Any) -> list[str]:
    return [d.result for d in evaluate(requests, {"p": POLICY}, PRINCIPAL, ACCOUNT, **kwargs)]


def test_allow_missing_allow_and_conditions() -> None:
    other = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/other:*"
    assert _results(
        [
            IamRequest("ecs:RegisterTaskDefinition", FAMILY),
            IamRequest("ecs:RegisterTaskDefinition", other),
            IamRequest("ecs:TagResource", FAMILY, {"ecs:CreateAction": "RegisterTaskDefinition"}),
            IamRequest("ecs:TagResource", FAMILY),
            IamRequest("ecs:DescribeTaskDefinition", FAMILY),  # wildcard-only: evaluated on "*"
        ]
    ) == ["Allowed", "ImplicitlyDenied", "Allowed", "ImplicitlyDenied", "Allowed"]


def test_a_boundary_caps_and_a_resource_policy_deny_wins() -> None:
    boundary = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    deny_http = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    object_ = IamRequest("s3:GetObject", "arn:aws:s3:::b/k")
    register = IamRequest("ecs:RegisterTaskDefinition", FAMILY)
    assert _results([object_, register], boundary=boundary) == ["Allowed", "ImplicitlyDenied"]
    policies = {"arn:aws:s3:::b": deny_http}
    assert _results([object_], resource_policies=policies) == ["Allowed"]  # over TLS
    plain = IamRequest("s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"})
    assert _results([plain], resource_policies=policies) == ["ExplicitlyDenied"]
