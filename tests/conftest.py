"""Shared fixtures; service fixtures live in tests/fixtures/services.py.

No fixture resets MLflow's process-wide URIs: nothing in `ml` sets them (explicit URIs through
`ml.registry.Registry`; `Registry.fluent()` restores what it changes).
"""

import os

import pytest

# mlflow server 3.x starts a pool of huey job consumers (~10 processes) that these tests never
# use; on a 2-core machine they slow every server start. Child processes inherit this.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

from tests.fixtures.services import (  # noqa: F401
    mlflow_pg_server,
    mlflow_sqlite_server,
    postgres,
)
from tests.fixtures.terraform import aws_world  # noqa: F401  (platform + staging on moto)

# `make pytest` runs on several xdist workers with `--dist loadgroup`; each group runs on one
# worker. A file is a group (its module fixtures start once); files sharing an expensive
# session fixture form one group, so the fixture is built once: the terraform-on-moto world, the
# docker engine and the images built in it.
SHARED_FIXTURE_GROUPS = {"aws_world": "aws-world", "docker_client": "docker"}
# The longest groups first, so that no long group starts last and runs alone.
LONGEST_FIRST = (
    "docker",
    "aws-world",
    "tests/integration/test_deploy_transaction.py",
    "tests/integration/test_airflow_dags.py",
)


def _group(item: pytest.Item) -> str:
    for fixture, group in SHARED_FIXTURE_GROUPS.items():
        if fixture in item.fixturenames:
            return group
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups = {id(item): _group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(groups[id(item)], len(rank)))  # stable: keeps file order
