"""The one place that talks to MLflow's tracking server and model registry.

Train, evaluate, the promotions engine and serve use `Registry(uri)`: explicit URIs, no
process-wide MLflow state (`mlflow.set_tracking_uri` is never called; the fluent API that
`log_model` needs runs inside `Registry.fluent()`, which puts the previous URIs back through
MLflow's public setters; no private MLflow attribute is set or called). Everything else works on
the small value types here and never sees MLflow entities, the client or REST errors.

Reads are batched and, where they can be, made without importing MLflow (seconds), because
`mlops promote plan|status` only read:

- an embedded SQLite store: `_SqliteReader` reads the registry tables directly (read-only, one
  connection, five queries) when the file's alembic revision is one this adapter was tested
  against (`KNOWN_SCHEMA`); any other revision goes through `MlflowClient`
  (tests/integration/test_registry.py: the reader equals the client, knows the alembic head of
  the installed MLflow, the lock allows only that MLflow, an unknown revision is never read);
- a tracking server: `_Rest` calls MLflow's public REST API (two searches, `name IN
  (...)`, for any number of models), authenticating from MLflow's own variables; the registry
  writes go through it too, one request each;
- otherwise `MlflowClient`'s searches, two for any number of models.

Serve uses: `get_by_alias(name, alias)` (alias → `VersionInfo`) and
`download_version(name, version, dst)` (a version's model directory, local).

Over 500 lines because it is the whole adapter: the value types, the three readers and the
writes are kept together so that nothing else in the package knows MLflow's shapes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ml.errors import RegistryError

_READY_TIMEOUT_S = 120
# Alembic revisions of MLflow's database schema whose registry tables `_SqliteReader` reads
# (MLflow 3.17.2); anything else falls back to MlflowClient.
KNOWN_SCHEMA = frozenset({"dc11669786a5"})
_DELETED = "Deleted_Internal"  # MLflow's stage for a deleted version (row kept)
# Names a `name IN ('a', 'b')` filter can quote as they are (the spec's own name rule is
# narrower); any other name is read on its own.
_SEARCHABLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")
_SEARCH_CHUNK = 100  # names per search: a filter string of a few kilobytes
_VERSIONS_PAGE = 10_000  # MLflow's default page of a version search
_SMALL_FILE = 1 << 20  # run files kept in memory once read (a contract is a few kilobytes)


@dataclass(frozen=True)
class VersionInfo:
    """What the engine needs to know about one registered version."""

    name: str
    version: int
    status: str
    stage: str
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """A training run as the project reads it: status, tags, logged metrics and parameters."""

    run_id: str
    status: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]


@dataclass(frozen=True)
class ModelState:
    """A registered model in one read: its aliases, model-level tags and every version."""

    name: str
    aliases: dict[str, int]
    tags: dict[str, str]
    versions: dict[int, VersionInfo]

    def holder(self, alias: str) -> VersionInfo | None:
        """The version an alias points at, or None when the alias is unset or dangling."""
        number = self.aliases.get(alias)
        return None if number is None else self.versions.get(number)


def _version_info(mv: Any) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        status=str(mv.status),
        stage=str(mv.current_stage or "None"),
        run_id=mv.run_id or None,
        source=str(mv.source),
        tags=dict(mv.tags or {}),
        aliases=tuple(sorted(mv.aliases or ())),
    )


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


_REGISTRY = "the MLflow registry"
_HINT = (
    "check that the server is up and that MLFLOW_TRACKING_URI (or ML_TRACKING_URI) points at it, "
    "then rerun"
)
# The remote registry the last `Registry` talks to (None for an embedded store), for the
# progress line and the one-line error; set by `Registry.__init__`.
_remote: str | None = None


@contextmanager
def registry_errors(what: str) -> Iterator[None]:
    """Turn MLflow, database and connection failures into a `RegistryError` naming the call.

    An unreachable or silent server is one line naming it (credentials masked) and what to do;
    a wait past a few seconds prints a progress line on stderr (CLI processes, see ml.waits).
    """
    from ml.waits import is_connection_failure, unreachable_message, waiting

    remote = _remote
    try:
        if remote is None:
            yield
        else:
            with waiting(_REGISTRY, remote):
                yield
    except RegistryError:
        raise
    except (OSError, sqlite3.Error) as exc:
        if remote is not None and is_connection_failure(exc):
            raise RegistryError(
                f"{what}: {unreachable_message(_REGISTRY, remote, exc, _HINT)}"
            ) from exc
        raise RegistryError(f"{what}: {exc}") from exc
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if remote is not None and is_connection_failure(exc):
            raise RegistryError(
                f"{what}: {unreachable_message(_REGISTRY, remote, exc, _HINT)}"
            ) from exc
        if isinstance(exc, MlflowException):
            raise RegistryError(f"{what}: {exc}") from exc
        raise


class _SqliteReader:
    """Read-only view of an embedded SQLite registry's tables, for the read-only verbs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)

    def usable(self) -> bool:
        """True when the file is absent (nothing registered) or its schema is a known one."""
        if not self.path.exists():
            return True
        try:
            con = self._connect()
            with con:
                revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
            con.close()
        except sqlite3.Error:
            return False
        return revision is not None and revision[0] in KNOWN_SCHEMA

    def read(self, names: Sequence[str]) -> dict[str, ModelState | None]:
        """Every model of `names` in five queries on one connection."""
        out: dict[str, ModelState | None] = dict.fromkeys(names)
        if not self.path.exists() or not names:
            return out
        con = self._connect()

        def rows(columns: str, table: str, extra: str = "", *more: str) -> list[tuple[Any, ...]]:
            # Table and column names are this module's constants; values are bound parameters.
            marks = ",".join("?" * len(names))
            sql = f"SELECT {columns} FROM {table} WHERE workspace = 'default' AND name IN ({marks}){extra}"  # noqa: S608, E501
            return con.execute(sql, [*names, *more]).fetchall()

        try:
            found = [r[0] for r in rows("name", "registered_models")]
            aliases: dict[str, dict[str, int]] = {n: {} for n in found}
            for name, alias, version in rows("name, alias, version", "registered_model_aliases"):
                aliases[name][alias] = int(version)
            tags: dict[str, dict[str, str]] = {n: {} for n in found}
            for name, key, value in rows("name, key, value", "registered_model_tags"):
                tags[name][key] = value
            vtags: dict[tuple[str, int], dict[str, str]] = {}
            for name, version, key, value in rows(
                "name, version, key, value", "model_version_tags"
            ):
                vtags.setdefault((name, int(version)), {})[key] = value
            versions: dict[str, dict[int, VersionInfo]] = {n: {} for n in found}
            for name, version, stage, status, run_id, source in rows(
                "name, version, current_stage, status, run_id, source",
                "model_versions",
                " AND current_stage != ?",
                _DELETED,
            ):
                number = int(version)
                versions[name][number] = VersionInfo(
                    name=name,
                    version=number,
                    status=str(status),
                    stage=str(stage or "None"),
                    run_id=run_id or None,
                    source=str(source),
                    tags=vtags.get((name, number), {}),
                    aliases=tuple(sorted(a for a, v in aliases[name].items() if v == number)),
                )
        finally:
            con.close()
        for name in found:
            out[name] = ModelState(name, aliases[name], tags[name], versions[name])
        return out


def _version_json(mv: dict[str, Any]) -> VersionInfo:
    """A model version as MLflow's REST API returns it."""
    return VersionInfo(
        name=mv["name"],
        version=int(mv["version"]),
        status=str(mv.get("status", "")),
        stage=str(mv.get("current_stage") or "None"),
        run_id=mv.get("run_id") or None,
        source=str(mv.get("source", "")),
        tags={t["key"]: t.get("value", "") for t in mv.get("tags", [])},
        aliases=tuple(sorted(mv.get("aliases") or ())),
    )


class _RestError(RegistryError):
    """A REST call the server refused; `error_code` is MLflow's (RESOURCE_DOES_NOT_EXIST...)."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class _Rest:
    """Client of MLflow's public REST API (2.0) for the engine's batched reads (the
    registered-model and model-version searches) and its registry writes, without importing
    MLflow (seconds). A write is one request: MlflowClient reads the registered model again
    before each registry write to refuse prompts (one hidden GET per write); the engine has
    just read every model it writes and refuses prompts itself.

    Authenticates as MLflow's own client does, from the same variables: MLFLOW_TRACKING_TOKEN
    (bearer), MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or credentials in the URI
    (basic), MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH and
    MLFLOW_TRACKING_CLIENT_CERT_PATH; times out and retries as MLflow's MLFLOW_HTTP_REQUEST_*
    say (the CLI's budget, `ml.waits`). Unlike MLflow's client search, a prompt is returned
    (with its `mlflow.prompt.is_prompt` tag), so the engine refuses it by name.
    """

    def __init__(self, uri: str) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(uri)
        self.auth = (parts.username or "", parts.password or "") if parts.username else None
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._session: Any = None

    def _http(self) -> Any:
        """The one `requests` session (retries, credentials, TLS as MLflow's client sets them)."""
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        env = os.environ
        if self._session is None:
            session = requests.Session()
            # every call retried as MLflow's client retries it (all methods: the engine's writes
            # are idempotent, a tag set to the same value twice is the same registry)
            retries = Retry(
                total=int(env.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")),
                backoff_factor=float(env.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2")),
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=None,
            )
            session.mount("http://", HTTPAdapter(max_retries=retries))
            session.mount("https://", HTTPAdapter(max_retries=retries))
            if env.get("MLFLOW_TRACKING_TOKEN"):
                session.headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
            elif env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
                session.auth = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
            elif self.auth is not None:
                session.auth = self.auth
            insecure = env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
            session.verify = (
                False if insecure else env.get("MLFLOW_TRACKING_SERVER_CERT_PATH", True)
            )
            if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
                session.cert = env["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
            self._session = session
        return self._session

    def _send(
        self,
        method: str,
        endpoint: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        *,
        api: str = "mlflow",
        stream: bool = False,
    ) -> Any:
        response = self._http().request(
            method,
            f"{self.base}/api/2.0/{api}/{endpoint}",
            params=params,
            json=body,
            timeout=float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")),
            stream=stream,
        )
        if response.status_code != 200:
            try:
                found = response.json()
            except ValueError:
                found = {}
            code = found.get("error_code", f"HTTP {response.status_code}")
            message = found.get("message") or response.text[:200]
            raise _RestError(f"{endpoint}: {code}: {message}", code)
        if stream:
            return response
        try:
            return response.json()
        except ValueError as exc:  # a proxy's login page, another service on that URI
            raise RegistryError(
                f"{endpoint}: the answer is not MLflow's JSON (is {self.base} an MLflow server?)"
            ) from exc

    # The server's artifact proxy (`mlflow-artifacts:/<path>` URIs, `mlflow server` serving
    # artifacts, as the mlflow image runs it): a listing per folder, a GET per file.

    def artifact_files(self, path: str) -> list[tuple[str, bool]]:
        """(name, is a folder) of each entry of an artifact folder; [] for a file or nothing."""
        found = self._send("GET", "artifacts", {"path": path}, None, api="mlflow-artifacts")
        return [(str(f["path"]), bool(f.get("is_dir"))) for f in found.get("files", [])]

    def download_file(self, path: str, local: Path) -> Path:
        """One artifact file into `local`."""
        from urllib.parse import quote

        response = self._send(
            "GET", f"artifacts/{quote(path)}", None, None, api="mlflow-artifacts", stream=True
        )
        local.parent.mkdir(parents=True, exist_ok=True)
        with response, local.open("wb") as fh:
            for chunk in response.iter_content(chunk_size=1 << 20):
                fh.write(chunk)
        return local

    def download_tree(self, path: str, local: Path) -> Path:
        """An artifact folder (every file under it) into the folder `local`."""
        local.mkdir(parents=True, exist_ok=True)
        for name, folder in self.artifact_files(path):
            if "/" in name or name in ("", ".", ".."):  # the server names entries; never climb
                raise RegistryError(f"artifact listing of {path} names {name!r}")
            if folder:
                self.download_tree(f"{path}/{name}", local / name)
            else:
                self.download_file(f"{path}/{name}", local / name)
        return local

    def get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        """One read (`GET /api/2.0/mlflow/<endpoint>`, query parameters)."""
        return self._send("GET", endpoint, params, None)

    def post(self, endpoint: str, body: dict[str, Any]) -> None:
        """One write (`POST /api/2.0/mlflow/<endpoint>`, a JSON body)."""
        self._send("POST", endpoint, None, body)

    def delete(self, endpoint: str, body: dict[str, Any]) -> None:
        """One deletion (`DELETE /api/2.0/mlflow/<endpoint>`, a JSON body, as MLflow sends it)."""
        self._send("DELETE", endpoint, None, body)

    def _pages(self, endpoint: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.get(endpoint, {**params, **({"page_token": token} if token else {})})
            out += page.get(key, [])
            token = page.get("next_page_token")
            if not token:
                return out

    def read(self, names: Sequence[str]) -> dict[str, ModelState | None]:
        """Every model of `names` in two searches (paged, `_SEARCH_CHUNK` names a filter)."""
        out: dict[str, ModelState | None] = dict.fromkeys(names)
        for i in range(0, len(names), _SEARCH_CHUNK):
            chunk = names[i : i + _SEARCH_CHUNK]
            where = "name IN (" + ", ".join(f"'{n}'" for n in chunk) + ")"
            models = self._pages(
                "registered-models/search",
                "registered_models",
                {"filter": where, "max_results": _SEARCH_CHUNK},
            )
            found = [m["name"] for m in models if m.get("name") in out]
            if not found:
                continue
            versions: dict[str, dict[int, VersionInfo]] = {n: {} for n in found}
            where = "name IN (" + ", ".join(f"'{n}'" for n in found) + ")"
            for mv in self._pages(
                "model-versions/search",
                "model_versions",
                {"filter": where, "max_results": _VERSIONS_PAGE},
            ):
                if mv.get("name") in versions:
                    info = _version_json(mv)
                    versions[info.name][info.version] = info
            for m in models:
                name = m.get("name")
                if name not in versions:
                    continue
                aliases = {a["alias"]: int(a["version"]) for a in m.get("aliases", [])}
                tags = {t["key"]: t.get("value", "") for t in m.get("tags", [])}
                mine = {
                    number: replace(
                        info, aliases=tuple(sorted(a for a, v in aliases.items() if v == number))
                    )
                    for number, info in versions[name].items()
                }
                out[name] = ModelState(name, aliases, tags, mine)
        return out


class Registry:
    """A narrow adapter over `MlflowClient` for one tracking/registry URI."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self._client: Any = None
        self._sqlite: _SqliteReader | None = None
        self._sqlite_checked = False
        self._rest: _Rest | None = None
        if self.registry_uri.startswith(("http://", "https://")):
            self._rest = _Rest(self.registry_uri)
        # A finished run's metrics and a version's MLmodel never change: read each once.
        self._metrics_cache: dict[str, dict[str, float]] = {}
        self._mlmodel_cache: dict[tuple[str, int], dict[str, Any]] = {}
        # ...nor does where a run's or a version's artifacts are, nor a small file of a run
        # (contract.json): the gates read each once per process, not once per gate
        self._run_roots: dict[str, str] = {}
        self._version_roots: dict[tuple[str, int], str] = {}
        self._run_files: dict[tuple[str, str], bytes | None] = {}
        # Every download of the project goes through this adapter, and its callers print one
        # line per result or error: MLflow's per-download progress bars on stderr are noise.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        global _remote
        if self.tracking_uri.startswith(("http://", "https://")):
            from ml.waits import where

            _remote = where(self.tracking_uri)

    @property
    def client(self) -> Any:
        """The `MlflowClient` (created, and MLflow imported, on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    @client.setter
    def client(self, value: Any) -> None:
        self._client = value
        self._sqlite, self._sqlite_checked = None, True  # a replaced client sees every read
        self._rest = None

    def _fast(self) -> _SqliteReader | None:
        """The direct SQLite reader when the registry is an embedded store it understands."""
        if not self._sqlite_checked:
            self._sqlite_checked = True
            uri = self.registry_uri
            if uri.startswith("sqlite:///") and "?" not in uri:
                reader = _SqliteReader(Path(uri.removeprefix("sqlite:///")))
                self._sqlite = reader if reader.usable() else None
        return self._sqlite

    # --- reads --------------------------------------------------------------------------

    def read_models(self, names: Sequence[str], workers: int = 8) -> dict[str, ModelState | None]:
        """Aliases, tags and versions of each model (None when not registered), in one batch:
        five queries on an embedded store, else two searches for all the models (one of the
        registered models, one of their versions, `name IN (...)`, paged). A model the search
        does not return (not registered, or a prompt, which MLflow's search leaves out) is read
        on its own, models concurrently, so a prompt is still seen as one."""
        fast = self._fast()
        if fast is not None:
            with registry_errors(f"read {', '.join(names)}"):
                return fast.read(names)
        out: dict[str, ModelState | None] = dict.fromkeys(names)
        batch = [n for n in dict.fromkeys(names) if _SEARCHABLE.match(n)]
        if self._rest is not None and batch:
            with registry_errors(f"read {', '.join(batch[:3])}{', ...' if len(batch) > 3 else ''}"):
                found = self._rest.read(batch)
            out.update(found)
            if all(found[n] is not None for n in batch) and len(batch) == len(out):
                return out
        elif len(batch) > 1:
            with registry_errors(f"read {len(batch)} models"):
                out.update(self._search_models(batch))
        alone = [n for n in out if out[n] is None]
        if len(alone) <= 1 or workers <= 1:
            out.update({name: self._read_one(name) for name in alone})
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(alone))) as pool:
                out.update(zip(alone, pool.map(self._read_one, alone), strict=True))
        return out

    def models_tags(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each model's tags ({} when not registered): one search for all of them over REST
        (what the lease reads before writing), the direct read on an embedded store."""
        fast = self._fast()
        if fast is not None:
            with registry_errors(f"read tags of {', '.join(names)}"):
                found = fast.read(names)
            return {n: dict(s.tags) if s else {} for n, s in found.items()}
        out: dict[str, dict[str, str]] = {}
        batch = [n for n in dict.fromkeys(names) if _SEARCHABLE.match(n)]
        if self._rest is not None and batch:
            with registry_errors(f"read tags of {len(batch)} models"):
                found = self._rest.read(batch)
            out.update({n: dict(s.tags) for n, s in found.items() if s is not None})
        elif len(batch) > 1:
            with registry_errors(f"read tags of {len(batch)} models"):
                out.update({rm.name: dict(rm.tags or {}) for rm in self._search_registered(batch)})
        for name in names:
            if name not in out:
                out[name] = self.model_tags(name)
        return out

    def _search_registered(self, names: Sequence[str]) -> list[Any]:
        """Every registered model of `names` (MLflow entities), by `name IN (...)` pages."""
        found: list[Any] = []
        for i in range(0, len(names), _SEARCH_CHUNK):
            chunk = names[i : i + _SEARCH_CHUNK]
            filter_string = "name IN (" + ", ".join(f"'{n}'" for n in chunk) + ")"
            token = None
            while True:
                page = self.client.search_registered_models(
                    filter_string, max_results=_SEARCH_CHUNK, page_token=token
                )
                found += list(page)
                token = page.token
                if not token:
                    break
        return found

    def _search_models(self, names: Sequence[str]) -> dict[str, ModelState]:
        """The registered models of `names` with every version: two searches (paged)."""
        models = {rm.name: rm for rm in self._search_registered(names)}
        versions: dict[str, dict[int, VersionInfo]] = {n: {} for n in models}
        for i in range(0, len(names), _SEARCH_CHUNK):
            chunk = [n for n in names[i : i + _SEARCH_CHUNK] if n in models]
            if not chunk:
                continue
            filter_string = "name IN (" + ", ".join(f"'{n}'" for n in chunk) + ")"
            token = None
            while True:
                page = self.client.search_model_versions(
                    filter_string, max_results=_VERSIONS_PAGE, page_token=token
                )
                for mv in page:
                    info = _version_info(mv)
                    if info.name in versions:
                        versions[info.name][info.version] = info
                token = page.token
                if not token:
                    break
        out = {}
        for name, rm in models.items():
            aliases = {k: int(v) for k, v in (rm.aliases or {}).items()}
            # a search leaves versions' aliases empty on some stores: take them from the model
            mine = {
                number: replace(
                    info, aliases=tuple(sorted(a for a, v in aliases.items() if v == number))
                )
                for number, info in versions[name].items()
            }
            out[name] = ModelState(name, aliases, dict(rm.tags or {}), mine)
        return out

    def model_state(self, name: str) -> ModelState | None:
        """One model's aliases, tags and versions; None when not registered."""
        return self.read_models([name])[name]

    def _read_one(self, name: str) -> ModelState | None:
        with registry_errors(f"read {name}"):
            try:
                rm = self.client.get_registered_model(name)
            except Exception as exc:
                if _not_found(exc):
                    return None
                raise
            found = self.client.search_model_versions(f"name = '{name}'")
            aliases = {k: int(v) for k, v in (rm.aliases or {}).items()}
            # A search leaves versions' aliases empty on some stores: take them from the model.
            versions = {}
            for mv in found:
                info = _version_info(mv)
                mine = tuple(sorted(a for a, v in aliases.items() if v == info.version))
                versions[info.version] = replace(info, aliases=mine)
            return ModelState(name, aliases, dict(rm.tags or {}), versions)

    def model_tags(self, name: str) -> dict[str, str]:
        """The registered model's tags (one call); empty when the model is not registered."""
        fast = self._fast()
        if fast is not None:
            state = fast.read([name])[name]
            return dict(state.tags) if state else {}
        with registry_errors(f"read tags of {name}"):
            try:
                return dict(self.client.get_registered_model(name).tags or {})
            except Exception as exc:
                if _not_found(exc):
                    return {}
                raise

    def get_version(self, name: str, version: int) -> VersionInfo | None:
        """One version, or None when it does not exist."""
        with registry_errors(f"get {name} v{version}"):
            try:
                if self._rest is not None:
                    found = self._rest.get(
                        "model-versions/get", {"name": name, "version": str(version)}
                    )
                    return _version_json(found["model_version"])
                return _version_info(self.client.get_model_version(name, str(version)))
            except Exception as exc:
                if _not_found(exc):
                    return None
                raise

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model, oldest first; empty when the model is not registered."""
        state = self.model_state(name)
        return [state.versions[v] for v in sorted(state.versions)] if state else []

    def get_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version `alias` points at, or None when unset (serve resolves its alias here)."""
        with registry_errors(f"get {name}@{alias}"):
            try:
                return _version_info(self.client.get_model_version_by_alias(name, alias))
            except Exception as exc:
                code = getattr(exc, "error_code", None)
                if _not_found(exc) or code == "INVALID_PARAMETER_VALUE":
                    return None
                raise

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """Metrics logged on a training run, read once per adapter (a finished run's metrics do
        not change)."""
        if run_id not in self._metrics_cache:
            self._read_run(run_id)
        return self._metrics_cache[run_id]

    def _read_run(self, run_id: str) -> None:
        """One read of a run for what never changes once it finished: metrics, artifact root."""
        with registry_errors(f"run {run_id}"):
            if self._rest is not None:
                found = self._rest.get("runs/get", {"run_id": run_id})["run"]
                metrics = found.get("data", {}).get("metrics", [])
                self._metrics_cache[run_id] = {m["key"]: float(m["value"]) for m in metrics}
                self._run_roots[run_id] = str(found["info"]["artifact_uri"])
                return
            run = self.client.get_run(run_id)
        self._metrics_cache[run_id] = dict(run.data.metrics)
        self._run_roots[run_id] = str(run.info.artifact_uri)

    def _run_root(self, run_id: str) -> str:
        if run_id not in self._run_roots:
            self._read_run(run_id)
        return self._run_roots[run_id]

    def mlmodel(self, name: str, version: int) -> dict[str, Any]:
        """A version's MLmodel file (flavors, signature), read once: artifacts are immutable.

        Two calls: the download URI, then the one file.
        """
        import tempfile

        import yaml

        key = (name, version)
        if key not in self._mlmodel_cache:
            with tempfile.TemporaryDirectory(prefix="mlmodel-") as tmp:
                path = self._download(name, version, Path(tmp), "MLmodel")
                with open(path, encoding="utf-8") as fh:
                    self._mlmodel_cache[key] = yaml.safe_load(fh) or {}
        return self._mlmodel_cache[key]

    def flavors(self, name: str, version: int) -> list[str]:
        """The flavors a version was logged in (e.g. xgboost, python_function)."""
        return sorted(self.mlmodel(name, version).get("flavors") or {})

    def signature_inputs(self, name: str, version: int) -> dict[str, str] | None:
        """Input column name → type of a version's logged signature; None when it has none."""
        inputs = (self.mlmodel(name, version).get("signature") or {}).get("inputs")
        if not inputs:
            return None
        cols = json.loads(inputs)
        return {str(c.get("name", i)): str(c.get("type")) for i, c in enumerate(cols)}

    def download_version(self, name: str, version: int, dst: Path) -> Path:
        """Download a version's model directory (MLmodel and the model files) into `dst`;
        returns the local directory. Serve and evaluate load from there."""
        return self._download(name, version, dst, "")

    def download_model(self, model_uri: str, dst: Path) -> Path:
        """Download a logged model (`models:/m-...`, `runs:/...`) into `dst`; returns the local
        directory. Inside `fluent()`: MLflow resolves `models:/` through its process-wide URIs."""
        import mlflow.artifacts

        with registry_errors(f"download {model_uri}"), self.fluent():
            dst.mkdir(parents=True, exist_ok=True)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        return Path(local)

    def run_tags(self, run_id: str) -> dict[str, str]:
        """Tags of a run (read each time: tags, unlike a finished run's metrics, may change)."""
        with registry_errors(f"run {run_id}"):
            return dict(self.client.get_run(run_id).data.tags)

    def run(self, run_id: str) -> RunRecord | None:
        """A run's status, tags, metrics and parameters; None when no such run exists."""
        with registry_errors(f"read run {run_id}"):
            try:
                run = self.client.get_run(run_id)
            except Exception as exc:
                if _not_found(exc):
                    return None
                raise
        data = run.data
        return RunRecord(
            run_id, str(run.info.status), dict(data.tags), dict(data.metrics), dict(data.params)
        )

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Set one tag on a run."""
        with registry_errors(f"tag run {run_id} {key}"):
            self.client.set_tag(run_id, key, value)

    def _proxied(self, uri: str) -> tuple[_Rest, str] | None:
        """(the REST client, the path under this server's artifact proxy) of an
        `mlflow-artifacts:/<path>` URI, read without MLflow; None for any other store (MLflow's
        own clients read it)."""
        if self._rest is None or not uri.startswith("mlflow-artifacts:/"):
            return None
        path = uri.removeprefix("mlflow-artifacts:")
        if path.startswith("//") or not path.strip("/"):
            return None
        return self._rest, path.strip("/")

    def _download(self, name: str, version: int, dst: Path, path: str) -> Path:
        with registry_errors(f"download {name} v{version} {path}".rstrip()):
            key = (name, version)
            if key not in self._version_roots:
                if self._rest is not None:
                    root = self._rest.get(
                        "model-versions/get-download-uri", {"name": name, "version": str(version)}
                    )["artifact_uri"]
                else:
                    root = self.client.get_model_version_download_uri(name, str(version))
                self._version_roots[key] = str(root).rstrip("/")
            root = self._version_roots[key]
            dst.mkdir(parents=True, exist_ok=True)
            uri = f"{root}/{path}" if path else root
            proxied = self._proxied(uri)
            if proxied is not None:
                rest, remote = proxied
                # as MLflow names it: the last part of the URI, under `dst`
                target = dst / remote.rsplit("/", 1)[-1]
                if path:
                    return rest.download_file(remote, target)
                return rest.download_tree(remote, target)
            import mlflow.artifacts

            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri,
                dst_path=str(dst),
                tracking_uri=self.tracking_uri,
            )
        return Path(local)

    # --- writes -------------------------------------------------------------------------
    # Over REST, each write is one request of MLflow's public API (`_Rest`); an embedded store
    # (or a client a test put in place) is written through MlflowClient's public methods.

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at `version` (moves it off any other version)."""
        with registry_errors(f"set alias {name}@{alias} -> v{version}"):
            if self._rest is not None:
                body = {"name": name, "alias": alias, "version": str(version)}
                self._rest.post("registered-models/alias", body)
            else:
                self.client.set_registered_model_alias(name, alias, str(version))

    def transition_stage(self, name: str, version: int, stage: str) -> None:
        """Legacy stage mirror: move one version to `stage` (nothing else is archived)."""
        with registry_errors(f"stage {name} v{version} -> {stage}"):
            if self._rest is not None:
                body = {
                    "name": name,
                    "version": str(version),
                    "stage": stage,
                    "archive_existing_versions": False,
                }
                self._rest.post("model-versions/transition-stage", body)
            else:
                self.client.transition_model_version_stage(
                    name, str(version), stage, archive_existing_versions=False
                )

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set one tag on a version."""
        with registry_errors(f"tag {name} v{version} {key}"):
            if self._rest is not None:
                body = {"name": name, "version": str(version), "key": key, "value": value}
                self._rest.post("model-versions/set-tag", body)
            else:
                self.client.set_model_version_tag(name, str(version), key, value)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        """Set one tag on the registered model."""
        with registry_errors(f"tag {name} {key}"):
            if self._rest is not None:
                body = {"name": name, "key": key, "value": value}
                self._rest.post("registered-models/set-tag", body)
            else:
                self.client.set_registered_model_tag(name, key, value)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias` from the model (a revert to an environment that had none); absent
        already is fine."""
        with registry_errors(f"delete alias {name}@{alias}"):
            try:
                if self._rest is not None:
                    self._rest.delete("registered-models/alias", {"name": name, "alias": alias})
                else:
                    self.client.delete_registered_model_alias(name, alias)
            except Exception as exc:
                if not _not_found(exc):
                    raise

    def delete_model_tag(self, name: str, key: str) -> None:
        """Delete one tag of the registered model; absent already is fine."""
        with registry_errors(f"delete tag {name} {key}"):
            try:
                if self._rest is not None:
                    self._rest.delete("registered-models/delete-tag", {"name": name, "key": key})
                else:
                    self.client.delete_registered_model_tag(name, key)
            except Exception as exc:
                if not _not_found(exc):
                    raise

    # --- training -----------------------------------------------------------------------

    def ensure_experiment(self, name: str, artifact_location: str | None) -> str:
        """Return the experiment id, creating the experiment on first use."""
        with registry_errors(f"experiment {name}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return str(experiment.experiment_id)
            return str(self.client.create_experiment(name, artifact_location=artifact_location))

    @contextmanager
    def fluent(self) -> Iterator[None]:
        """Point MLflow's fluent API (`start_run`, `log_model`) at this registry for a block.

        `log_model` has no URI parameter: it reads MLflow's process-wide URIs. They are put
        back on exit through MLflow's public setters (a URI the process had set is set again;
        none set is unset again), and so are the MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI
        variables `set_tracking_uri` exports, so no call leaves global state behind. Not for
        concurrent threads.
        """
        import mlflow
        from mlflow.tracking import is_tracking_uri_set

        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        tracking = mlflow.get_tracking_uri() if is_tracking_uri_set() else None
        # A URI that only the environment gave is left to the environment (restored below):
        # setting it back would pin it in the process after the variable goes.
        if tracking is not None and tracking == saved_env["MLFLOW_TRACKING_URI"]:
            tracking = None
        # unset, the registry URI reads as the tracking URI: only a different one was set
        registry = mlflow.get_registry_uri()
        registry_set = registry not in (mlflow.get_tracking_uri(), saved_env["MLFLOW_REGISTRY_URI"])
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(tracking)  # type: ignore[arg-type]  # None unsets it
            mlflow.set_registry_uri(registry if registry_set else None)  # type: ignore[arg-type]
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def register(
        self, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
    ) -> VersionInfo:
        """Register `model_uri` as a new version of `name` and wait until it is READY.

        Inside `fluent()`: a database registry resolves a `models:/m-...` source through
        MLflow's process-wide tracking URI, not the client's.
        """
        with registry_errors(f"register {name}"), self.fluent():
            try:
                self.client.get_registered_model(name)
            except Exception as exc:
                if not _not_found(exc):
                    raise
                self.client.create_registered_model(
                    name, description="Probability of default; promoted via promotions.yaml."
                )
            # A logged model (`models:/m-...`) must be named by id too, or a tracking server
            # refuses the source (MLflow 3 checks that model_id contains it).
            model_id = (
                model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
            )
            mv = self.client.create_model_version(
                name,
                source=model_uri,
                run_id=run_id,
                tags=tags,
                description=description,
                model_id=model_id,
            )
            deadline = time.monotonic() + _READY_TIMEOUT_S
            while str(mv.status) == "PENDING_REGISTRATION" and time.monotonic() < deadline:
                time.sleep(0.5)
                mv = self.client.get_model_version(name, mv.version)
            if str(mv.status) != "READY":
                raise RegistryError(f"{name} version {mv.version} is {mv.status}, not READY")
            return _version_info(mv)

    # --- serving, batch scoring and the gates --------------------------------------------
    # The alias lookup is `get_by_alias`, a version's files `download_version`, a run's metrics
    # `run_metrics`; this adds the one file a version's run carries beside its model.

    def download_run_file(self, run_id: str, path: str, dst: Path) -> Path | None:
        """One file of a run's artifacts (`contract.json`, `reference/reference.parquet`), or
        None when the run has no such file (one logged before the project logged it). A file
        under `_SMALL_FILE` bytes is read once per adapter (the gates read a contract twice)."""
        key = (run_id, path)
        local = dst / path
        if key in self._run_files:
            content = self._run_files[key]
            if content is None:
                return None
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(content)
            return local
        with registry_errors(f"run {run_id} artifact {path}"):
            root = self._run_root(run_id).rstrip("/")
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            proxied = self._proxied(root)
            if proxied is not None:
                rest, remote = proxied
                entries = rest.artifact_files(f"{remote}/{folder}" if folder else remote)
                names = {name for name, _ in entries}
            else:
                import mlflow.artifacts

                listed = mlflow.artifacts.list_artifacts(
                    artifact_uri=f"{root}/{folder}" if folder else root,
                    tracking_uri=self.tracking_uri,
                )
                names = {a.path.rsplit("/", 1)[-1] for a in listed or ()}
            if path.rsplit("/", 1)[-1] not in names:
                self._run_files[key] = None
                return None
            dst.mkdir(parents=True, exist_ok=True)
            if proxied is not None:
                rest, remote = proxied
                found = rest.download_file(f"{remote}/{path}", dst / path.rsplit("/", 1)[-1])
            else:
                import mlflow.artifacts

                found = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=f"{root}/{path}",
                        dst_path=str(dst),
                        tracking_uri=self.tracking_uri,
                    )
                )
        if found.stat().st_size <= _SMALL_FILE:
            self._run_files[key] = found.read_bytes()
        return found
