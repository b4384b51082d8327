"""Verdicts computed once: `VerdictCache` keys a verdict by what it depends on.

The key: the candidate and its run, the production version and its run, the model's effective
gates, the replay data, the rollback and re-sync flags. Verdicts are kept in memory and on disk
(`ML_PROMOTE_VERDICT_CACHE`), so validate, plan, apply staging and apply production score each
pair once. A failure that may be transient (a load or a read that failed) is not written to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ml.promotions.gates.results import GateResult, Verdict
from ml.promotions.records import has_record

if TYPE_CHECKING:
    from ml.promotions.gates.config import ModelGates
    from ml.registry import ModelState

_CACHEABLE_FAILURES = frozenset({"tag", "floor", "ceiling", "regression", "rollback-marker"})
"""Failures that are facts about the versions (a canary failure with figures is one too); any
other failure may be transient (a download that failed) and is never written to disk."""


def _fingerprint(path: Path) -> str:
    """Size and mtime of a file, or of every file under a folder (cheap; content changes that
    keep both are caught by the data checksum the holdout is keyed by)."""
    if path.is_file():
        st = path.stat()
        return f"{path}:{st.st_size}:{st.st_mtime_ns}"
    if path.is_dir():
        return "|".join(_fingerprint(p) for p in sorted(path.rglob("*")) if p.is_file())
    return f"{path}:missing"


def replay_key(config: ModelGates) -> str | None:
    """What the canary's replay data is, as a cache key part; None when it cannot be told
    cheaply (an s3:// prefix, a time window), so the verdict is not kept across processes."""
    canary = config.canary
    if canary is None or not canary.enabled:
        return "no-canary"
    if canary.replay == "holdout":
        from ml.settings import MLSettings

        settings = MLSettings()
        train = Path(settings.train_config)
        digest = hashlib.sha256(train.read_bytes()).hexdigest() if train.is_file() else "none"
        return f"holdout:{settings.data_source}:{settings.data_sha256}:{digest}"
    if canary.window or not canary.logs or "://" in canary.logs:
        return None
    return "logs:" + hashlib.sha256(_fingerprint(Path(canary.logs)).encode()).hexdigest()


def _verdict_json(verdict: Verdict) -> str:
    return json.dumps(
        {
            "model": verdict.model,
            "version": verdict.version,
            "results": [
                {**asdict(r), "figures": dict(r.figures) if r.figures else None}
                for r in verdict.results
            ],
        },
        default=float,
        sort_keys=True,
    )


def _verdict_from(raw: str) -> Verdict | None:
    try:
        data = json.loads(raw)
        results = tuple(GateResult(**r) for r in data["results"])
        return Verdict(str(data["model"]), int(data["version"]), results)
    except (ValueError, KeyError, TypeError):
        return None  # an unreadable entry is a miss


def _durable(verdict: Verdict) -> bool:
    """True when every failure is a fact about the versions (see `_CACHEABLE_FAILURES`)."""
    return all(
        r.family in _CACHEABLE_FAILURES or (r.family == "canary" and r.figures)
        for r in verdict.failures
    )


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class VerdictCache:
    """Verdicts by what they depend on, in memory and (with `directory`) on disk.

    The key: model, candidate version and run, production version and run, rollback and
    re-sync flags, the model's effective gates and the replay data (`replay_key`). A key whose
    replay data cannot be told cheaply is kept in memory only.
    """

    def __init__(self, directory: Path | None = None) -> None:
        """`directory`: where verdicts persist across processes (None: memory only)."""
        self.directory = directory
        self.memory: dict[str, Verdict] = {}
        self.computed = 0  # verdicts evaluated (not found), for tests and the benchmark
        self._lock = threading.Lock()

    @staticmethod
    def key(
        state: ModelState | None,
        name: str,
        version: int,
        config: ModelGates,
        *,
        rollback: bool,
        resync: bool,
    ) -> tuple[str, bool]:
        """(key, durable): `durable` when the key names everything the verdict reads."""
        info = state.versions.get(version) if state else None
        holder = None if resync or state is None else state.holder("production")
        replay = replay_key(config)
        parts = {
            "model": name,
            "version": version,
            "run": info.run_id if info else None,
            "status": info.status if info else None,
            # the version's own tags (required_tags); apply records change nothing a gate reads
            # except "was it ever production" (the rollback marker)
            "tags": sorted(kv for kv in info.tags.items() if not kv[0].startswith("promotion."))
            if info
            else None,
            "ran_in_production": has_record(info, "production") if info else None,
            "production": [holder.version, holder.run_id] if holder else None,
            "rollback": rollback,
            "resync": resync,
            "gates": config.model_dump(mode="json", exclude={"soak"}),
            "replay": replay,
            # the governance gates read this reviewed file: a changed file is a new verdict
            "governance": _file_digest(config.governance.file) if config.governance else None,
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest(), replay is not None

    def get_or_compute(self, key: str, durable: bool, compute: Callable[[], Verdict]) -> Verdict:
        """The cached verdict for `key`, or `compute()` it once and keep it."""
        with self._lock:
            if key in self.memory:
                return self.memory[key]
        path = self.directory / f"{key}.json" if self.directory and durable else None
        if path is not None and path.is_file():
            found = _verdict_from(path.read_text(encoding="utf-8"))
            if found is not None:
                with self._lock:
                    self.memory[key] = found
                return found
        verdict = compute()
        with self._lock:
            self.memory[key] = verdict
            self.computed += 1
        if path is not None and _durable(verdict):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(_verdict_json(verdict), encoding="utf-8")
                tmp.replace(path)
            except OSError:
                pass  # a cache that cannot be written only costs time
        return verdict
