"""Follow the alias: poll the registry, load and warm a new version in the background, swap.

Runs in a daemon thread (registry calls are blocking HTTP); the event loop never waits on it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

from serve.errors import ModelLoadError, RegistryUnavailableError
from serve.metrics import Metrics
from serve.model_store import LoadedModel, ModelStore, Registry, load_from_path
from serve.settings import ServeSettings

log = logging.getLogger("serve.watcher")


@dataclass(frozen=True)
class HealthState:
    """What /health reports; replaced as a whole."""

    degraded_reason: str | None = None
    last_poll: float | None = None


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
        self._failed: tuple[str, float] | None = None  # version, monotonic time of failure

    def start(self) -> None:
        """Start polling in a daemon thread (the first load happens there too)."""
        self._thread = threading.Thread(target=self._run, name="serve-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait a little for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.settings.poll_interval)

    def _degrade(self, reason: str | None) -> None:
        self.health = HealthState(degraded_reason=reason, last_poll=time.time())

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
        try:
            if self._registry is None:
                self._registry = Registry(s.tracking_uri, s.registry_timeout)
            version, run_id = self._registry.alias_version(s.model_name, s.model_alias)
            self.metrics.registry_up.set(1)
        except RegistryUnavailableError as exc:
            self.metrics.registry_up.set(0)
            log.warning("registry poll failed: %s", exc)
            if current is None and s.model_path is not None:
                self._load_path()
                if self.store.current is not None:
                    self._degrade(f"serving SERVE_MODEL_PATH; {exc}")
                return
            self._degrade(str(exc))
            return
        if current is not None and current.source == "registry" and current.version == version:
            self._degrade(None)
            return
        # A version that failed is not downloaded again on every poll, but it is retried later:
        # a download that timed out must not pin the old model until the alias moves.
        failed_recently = (
            self._failed is not None
            and self._failed[0] == version
            and time.monotonic() - self._failed[1] < s.load_retry_interval
        )
        if failed_recently:
            return
        try:
            model = self._registry.load(s.model_name, s.model_alias, version, run_id, s.max_batch)
        except ModelLoadError as exc:
            self._failed = (version, time.monotonic())
            self.metrics.reload_failures.inc()
            log.error("loading %s version %s failed: %s", s.model_name, version, exc)
            self._degrade(f"cannot load version {version}: {exc}")
            if current is None and s.model_path is not None:
                self._load_path()
            return
        self._failed = None
        self._swap(model)
        self._degrade(None)

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
            "serving %s version %s (%s) instead of %s",
            model.name,
            model.version,
            model.source,
            previous.version if previous else None,
        )


def settle_heap() -> None:
    """Collect once, then freeze what is left: the app, mlflow and the model just loaded.

    A loaded process holds ~160k objects that the cyclic collector walks on every full
    collection (~90 ms); left alone it runs one every few thousand requests, and the requests
    queued meanwhile make the p99. Frozen objects are skipped. Unfreezing first lets this
    collection reclaim the cycles of models swapped out before, so memory stays bounded; the
    price is one such pause per swap instead of one every few thousand requests.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
