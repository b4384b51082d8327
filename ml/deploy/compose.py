"""The compose stack on a machine without a bridge network: docker-compose.yml and its host-network
override rendered into one file (docs/offline-machines.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ml.adapters import docker

ROOT = Path(__file__).resolve().parents[2]


def render_hostnet(
    out: Path, env: dict[str, str] | None = None, overrides: Iterable[str] = ()
) -> Path:
    """docker-compose.yml + docker-compose.hostnet.yml (+ `overrides`, e.g.
    docker-compose.features.yml) resolved into one file, minus `ports:`.

    docker-compose 1.29 refuses `ports:` with `network_mode: host` ("incompatible with
    port_bindings") and an override cannot delete a key there (v2's `!reset` is v2-only), so the
    merged, interpolated config is written out without them. Ports come from MLFLOW_PORT,
    API_PORT and REDIS_PORT at render time.
    """
    import yaml

    files = ["docker-compose.yml", "docker-compose.hostnet.yml", *overrides]
    config = yaml.safe_load(docker.compose_config(files, ROOT, env))
    for service in config.get("services", {}).values():
        service.pop("ports", None)
    config.pop("name", None)  # v2 adds the project name; -p sets it
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out
