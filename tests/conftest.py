"""Shared fixtures; service fixtures live in tests/fixtures/services.py.

No fixture resets MLflow's process-wide URIs: nothing in `ml` sets them (explicit URIs through
`ml.registry.Registry`; `Registry.fluent()` restores what it changes).
"""

import os

import pytest

# mlflow server 3.x starts a pool of huey job consumers (~10 processes) that these tests never
# use; on a 2-core machine they slow every server start. Child processes inherit this.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

from tests.fixtures.redis_server import redis_server  # noqa: F401  (the online feature store)
from tests.fixtures.services import (  # noqa: F401
    aws_on_moto,
    mlflow_pg_server,
    mlflow_sqlite_server,
    moto_url,
    postgres,
)
from tests.fixtures.spark import spark_session  # noqa: F401  (one local[2] JVM per worker)
from tests.fixtures.terraform import aws_world  # noqa: F401  (platform + staging on moto)

# `make pytest` runs on several xdist workers; a work unit (one worker, in order) is a test file,
# so its module fixtures start once, or a group of files that share an expensive session
# fixture, so that fixture is built once: the terraform-on-moto world, the docker engine and the
# images built in it, the local Spark session (one JVM). (xdist's `loadgroup` cannot do this
# with pytest 9: it rewrites node ids.)
# tests/unit/test_layout.py checks that every file using those fixtures is listed here.
SHARED_FIXTURE_FILES = {
    "tests/integration/test_iam_least_privilege.py": "aws-world",
    "tests/integration/test_terraform_moto.py": "aws-world",
    "tests/integration/test_compose_stack.py": "docker",
    "tests/integration/test_deploy_images.py": "docker",
    "tests/unit/workflows/test_scan_images.py": "docker",
    "tests/integration/test_spark_training.py": "spark",
    "tests/integration/test_spark_scoring.py": "spark",
}
# The longest units first, so that none of them starts last and runs alone.
LONGEST_FIRST = (
    "docker",
    "aws-world",
    "spark",
    "tests/integration/test_deploy_transaction.py",
    "tests/integration/test_airflow_dags.py",
    "tests/integration/test_dvc_pipeline.py",
    "tests/e2e/test_gitops_loop.py",
)


def work_unit(nodeid: str) -> str:
    """The unit a test runs in: its file, or the group of files sharing its fixture."""
    path = nodeid.split("::", 1)[0]
    return SHARED_FIXTURE_FILES.get(path, path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    # Stable: files keep their order within a rank. xdist hands units out in this order.
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))
