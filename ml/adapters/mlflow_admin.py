"""MLflow's basic-auth admin API (users and their permissions), with the admin's credentials.

urllib only, no mlflow import: `mlops bootstrap` runs where the MLflow client is not needed. The
registry itself (models, versions, aliases) is `ml.registry.Registry`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

from ml.errors import NotFoundError, RegistryError, one_line


class MlflowAdminApi:
    """One JSON call at a time to an MLflow server run with `--app-name basic-auth`."""

    def __init__(self, tracking_uri: str, username: str, password: str | None) -> None:
        self.uri = tracking_uri.rstrip("/")
        self._auth = (
            "Basic " + b64encode(f"{username}:{password}".encode()).decode() if password else None
        )

    def request(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer (`{}` when empty).

        Raises:
            NotFoundError: HTTP 404 (no such user, experiment or permission).
            FileExistsError: the resource exists already (HTTP 400 RESOURCE_ALREADY_EXISTS).
            RegistryError: any other HTTP error (naming the admin credentials on 401/403), or
                the server cannot be reached.
        """
        data = json.dumps(dict(payload or {})).encode() if method != "GET" else None
        request = urllib.request.Request(  # noqa: S310 (the registry URL terraform output)
            f"{self.uri}{path}",
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": self._auth} if self._auth else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if exc.code == 404:
                raise NotFoundError(path) from exc
            if exc.code == 400 and "RESOURCE_ALREADY_EXISTS" in text:
                raise FileExistsError(path) from exc
            raise RegistryError(
                f"MLflow {method} {path}: HTTP {exc.code} {one_line(text)}"
                + (
                    " (are MLFLOW_ADMIN_USERNAME/PASSWORD an admin's?)"
                    if exc.code in (401, 403)
                    else ""
                )
            ) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise RegistryError(f"MLflow at {self.uri} unreachable: {exc}") from exc
        return json.loads(raw) if raw.strip() else {}
