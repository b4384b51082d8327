"""Follow the alias: poll the registry, load and warm a new version in the background, swap.

With a pinned version (`SERVE_MODEL_VERSION`, what an ECS task definition sets) the watcher loads
that version and then stops polling: the alias may move (it records what runs once a deploy is
verified) without the process changing what it serves, so a task answers exactly its release.

Runs in a daemon thread (registry calls are blocking HTTP); the event loop never waits on it.
/health is degraded, with the reason in one line, whenever the version the alias points at is
not the one served: registry unreachable, alias unset, or the version failed to load (also
while it waits to be retried).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml.errors import RegistryError
from serve.errors import ModelLoadError
from serve.metrics import Metrics
from serve.model_store import LoadedModel, ModelStore, load_from_path, load_from_registry
from serve.redaction import scrub
from serve.settings import ServeSettings

if TYPE_CHECKING:
    from ml.registry import Registry

log = logging.getLogger("serve.watcher")


@dataclass(frozen=True)
class HealthState:
    """What /health reports; replaced as a whole."""

    degraded_reason: str | None = None
    alias_version: str | None = None
    last_poll: float | None = None


@dataclass(frozen=True)
class _Failure:
    version: str
    at: float  # monotonic
    reason: str


class Watcher:
    """Loads the first model, then keeps `store` on whatever the alias points at."""

    def __init__(self, settings: ServeSettings, store: ModelStore, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.health = HealthState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry: Registry | None = None
        self._failed: _Failure | None = None

    def start(self) -> None:
        """Start polling in a daemon thread (the first load happens there too)."""
        self._thread = threading.Thread(target=self._run, name="serve-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to stop and wait a little for it: a download in progress is abandoned
        (daemon thread), so shutting down stays bounded."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the thread must outlive any surprise; health says why
                log.error("poll failed unexpectedly", exc_info=exc)
                self._degrade(f"watcher error: {type(exc).__name__}: {exc}")
            if self.pinned_and_served():
                log.info("serving pinned %s: no more registry polls", self.settings.follows())
                return
            self._stop.wait(self.settings.poll_interval)

    def pinned_and_served(self) -> bool:
        """True once the pinned version is the one served (nothing left to poll for)."""
        pinned, current = self.settings.model_version, self.store.current
        return (
            pinned is not None
            and current is not None
            and current.source == "registry"
            and current.version == str(pinned)
        )

    def _degrade(self, reason: str | None, alias_version: str | None = None) -> None:
        """Set what /health says; log it when it changes (not on every poll of an outage)."""
        if reason is not None:
            served = self.store.current
            tail = (
                f"; serving version {served.version} ({served.source})" if served else "; no model"
            )
            reason = scrub(reason + tail)
        previous = self.health.degraded_reason
        self.health = HealthState(reason, alias_version, last_poll=time.time())
        if reason != previous:
            if reason is not None:
                log.warning("degraded: %s", reason)
            elif previous is not None:
                log.info("healthy again: the alias's version is served")

    def registry(self) -> Registry:
        """The MLflow adapter, built on first use with a short timeout and no retries: the
        watcher retries on its own schedule, and must not hang for minutes."""
        if self._registry is None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault(
                "MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, self.settings.registry_timeout)))
            )
            from ml.registry import Registry

            assert self.settings.tracking_uri is not None
            self._registry = Registry(self.settings.tracking_uri)
        return self._registry

    def poll_once(self) -> None:
        """One poll: resolve the alias, load on change, fall back to MODEL_PATH when needed."""
        s = self.settings
        current = self.store.current
        if s.tracking_uri is None:
            if current is None and s.model_path is not None:
                self._load_path()
            elif current is None:
                self._degrade("no MLFLOW_TRACKING_URI and no SERVE_MODEL_PATH: nothing to serve")
            return
        if self.pinned_and_served():
            return
        target = s.follows()
        alias = None if s.model_version is not None else s.model_alias
        try:
            if s.model_version is not None:
                found = self.registry().get_version(s.model_name, s.model_version)
            else:
                found = self.registry().get_by_alias(s.model_name, s.model_alias)
            self.metrics.registry_up.set(1)
        except RegistryError as exc:
            self.metrics.registry_up.set(0)
            self._fallback(f"registry unreachable, cannot resolve {target}: {exc}")
            return
        if found is None:
            what = "does not exist" if alias is None else "is not set"
            self._fallback(f"{target} {what} in the registry")
            return
        version = str(found.version)
        if current is not None and current.source == "registry" and current.version == version:
            self._degrade(None, version)
            return
        # A version that failed is not downloaded again on every poll, but it is retried later:
        # a download that timed out must not pin the old model until the alias moves.
        failed = self._failed
        if (
            failed is not None
            and failed.version == version
            and time.monotonic() - failed.at < s.load_retry_interval
        ):
            self._degrade(failed.reason, version)
            return
        try:
            model = load_from_registry(
                self.registry(), s.model_name, alias, version, found.run_id, s.max_batch
            )
        except ModelLoadError as exc:
            reason = (
                f"{target} is version {version}, which cannot be served "
                f"(next try in {s.load_retry_interval:g} s): {exc}"
            )
            self._failed = _Failure(version, time.monotonic(), reason)
            self.metrics.reload_failures.inc()
            if current is None and s.model_path is not None:
                self._load_path()
            self._degrade(reason, version)
            return
        self._failed = None
        self._swap(model)
        self._degrade(None, version)

    def _fallback(self, reason: str) -> None:
        """The registry gave no servable answer: keep what is served, or load MODEL_PATH."""
        if self.store.current is None and self.settings.model_path is not None:
            self._load_path()
            if self.store.current is not None:
                reason = f"serving SERVE_MODEL_PATH; {reason}"
        self._degrade(reason)

    def _load_path(self) -> None:
        assert self.settings.model_path is not None
        try:
            model = load_from_path(self.settings.model_path, max_batch=self.settings.max_batch)
        except ModelLoadError as exc:
            self.metrics.reload_failures.inc()
            self._degrade(f"cannot load SERVE_MODEL_PATH: {exc}")
            return
        self._swap(model)
        self._degrade(None)

    def _swap(self, model: LoadedModel) -> None:
        settle_heap()
        previous = self.store.swap(model)
        self.metrics.reloads.inc()
        self.metrics.set_model(model.name, model.version, model.alias, model.source)
        log.info(
            "serving %s version %s (%s, contract %s) instead of %s",
            model.name,
            model.version,
            model.source,
            model.contract_source,
            previous.version if previous else None,
        )


def settle_heap() -> None:
    """Collect once, then freeze what is left: the app, mlflow and the model just loaded.

    The collector then skips those objects on its full collections, so they no longer pause
    requests; unfreezing first lets this collection reclaim the models swapped out before.
    One pause per swap instead of one every few thousand requests (docs/performance.md).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
