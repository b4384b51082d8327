#!/usr/bin/env python3
"""Give the secrets terraform created empty their first value, once; never overwrite one.

Terraform creates the secrets (MLflow's admin, the API token, the API's MLflow credentials) but
never their values: a value that passes through terraform lands in its state, and refreshing the
secret version would need secretsmanager:GetSecretValue, which the plan roles must not have.
This script reads a root's `seed_secrets` output on stdin
    {"<name>": {"arn": "<secret arn>", "template": {"username": "admin", "password": "@random"}}}
and, for each secret without a current value, stores the template as JSON with every "@random"
replaced by 48 url-safe random characters. A secret that already has a value is left as it is
(rotate by changing it through the owning system, e.g. MLflow's update-password API, then
put-secret-value). It prints names, ARNs and what it did; never a value.

Usage: make tf-seed-secrets ROOT=<root>  (terraform output -json seed_secrets | seed_secrets.py)
Credentials: the bootstrap's administrator session (AWS_* / AWS_PROFILE); AWS_ENDPOINT_URL is
honoured (tests point it at moto).
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Any

RANDOM = "@random"


def render(template: dict[str, str]) -> str:
    """The secret's JSON value: the template with every "@random" generated."""
    return json.dumps(
        {k: secrets.token_urlsafe(36) if v == RANDOM else v for k, v in template.items()}
    )


def has_value(client: Any, arn: str) -> bool:
    """Whether the secret has a version labelled AWSCURRENT (DescribeSecret; no value read)."""
    stages = client.describe_secret(SecretId=arn).get("VersionIdsToStages") or {}
    return any("AWSCURRENT" in labels for labels in stages.values())


def seed(client: Any, spec: dict[str, dict[str, Any]]) -> list[str]:
    """Seed every secret of `spec` that has no value; return one line per secret."""
    report = []
    for name, entry in sorted(spec.items()):
        arn, template = entry["arn"], entry["template"]
        if has_value(client, arn):
            report.append(f"{name}: has a value already, left unchanged ({arn})")
            continue
        client.put_secret_value(SecretId=arn, SecretString=render(template))
        report.append(f"{name}: seeded ({arn}; keys {', '.join(sorted(template))})")
    return report


def main() -> int:
    """Read the spec from stdin and seed it with the default AWS session."""
    raw = sys.stdin.read()
    try:
        spec = json.loads(raw)
        if not isinstance(spec, dict) or not all(
            isinstance(v, dict) and {"arn", "template"} <= set(v) for v in spec.values()
        ):
            raise ValueError("expected {name: {arn, template}}")
    except ValueError as exc:
        print(
            f"error: stdin is not a seed_secrets output ({exc}); "
            "run: terraform output -json seed_secrets | seed_secrets.py",
            file=sys.stderr,
        )
        return 2
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for line in seed(boto3.client("secretsmanager"), spec):
            print(line)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: seeding failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
