"""Shared fixtures; service fixtures live in tests/fixtures/services.py.

No fixture resets MLflow's process-wide URIs: nothing in `ml` sets them (explicit URIs through
`ml.registry.Registry`; `Registry.fluent()` restores what it changes).
"""

import os

# mlflow server 3.x starts a pool of huey job consumers (~10 processes) that these tests never
# use; on a 2-core machine they slow every server start. Child processes inherit this.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

from tests.fixtures.services import (  # noqa: F401
    mlflow_pg_server,
    mlflow_sqlite_server,
    postgres,
)
from tests.fixtures.terraform import aws_world  # noqa: F401  (platform + staging on moto)
