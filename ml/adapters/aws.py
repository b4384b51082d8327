"""AWS: the only module that creates boto3 clients and sessions.

boto3 is imported inside each function, so the CLI and serving never pay for it; the standard
environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL: moto in tests) configures it. Callers
catch botocore's exception types (`botocore.exceptions`) where they turn a failure into their
own error; those types carry no client.
"""

from __future__ import annotations

from typing import Any


def client(service: str, region: str | None = None, *, config: Any = None) -> Any:
    """A boto3 client of `service` (ecs, ecr, s3, secretsmanager, sts...).

    Args:
        service: The AWS service name.
        region: The region; None leaves it to the environment.
        config: A `botocore.config.Config` (retries, timeouts), e.g. `ml.waits.boto_config()`.
    """
    import boto3

    # The typed stubs overload on each literal service name; the adapter takes any.
    make: Any = boto3.client
    if config is None:
        return make(service, region_name=region)
    return make(service, region_name=region, config=config)


def session(region: str) -> Any:
    """A boto3 session in `region` (bootstrap creates several clients from one)."""
    import boto3

    return boto3.session.Session(region_name=region)
