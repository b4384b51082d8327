"""Shared fixtures; service fixtures live in tests/fixtures/services.py."""

import os
from collections.abc import Iterator

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


@pytest.fixture(autouse=True)
def _isolate_mlflow_uris() -> Iterator[None]:
    """Undo MLflow's process-wide URIs after each test.

    `ml.train` calls `mlflow.set_tracking_uri`, which also exports MLFLOW_TRACKING_URI and sets a
    global registry URI; without this, a later test (or a client built without an explicit
    registry URI) silently talks to the previous test's store.
    """
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    tracking_utils._tracking_uri = None
    registry_utils._registry_uri = None
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved
