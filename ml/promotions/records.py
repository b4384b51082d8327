"""The audit records `apply` leaves on a version: one tag per apply, `promotion.<env>.<commit>`.

Each holds JSON: environment, version, git_sha, pr, actor, run_url, time, previous, rollback,
allow_skip_staging. Keying by commit keeps every promotion of a version (v1, v2, back to v1 gives
v1 two records) while a rerun of the same apply overwrites its own record. Applies before this
wrote one `promotion.<env>` tag per version, overwritten by each apply; it is still read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ml.registry import VersionInfo

_NOT_IN_KEY = re.compile(r"[^0-9A-Za-z_-]")


def _legacy_tag(env: str) -> str:
    return f"promotion.{env}"


def record_tag(env: str, git_sha: str) -> str:
    """Version tag of the apply of `git_sha` to `env`.

    `--git-sha` is free text: keep the characters MLflow allows in a key and a length that fits
    any commit id (SHA-1 or SHA-256).
    """
    return f"{_legacy_tag(env)}.{_NOT_IN_KEY.sub('-', git_sha)[:64] or 'unknown'}"


def _is_record(key: str, env: str) -> bool:
    return key == _legacy_tag(env) or key.startswith(f"{_legacy_tag(env)}.")


def has_record(info: VersionInfo, env: str) -> bool:
    """True when some apply (this format or the older single tag) reached `env` with `info`."""
    return any(_is_record(key, env) for key in info.tags)


def records(info: VersionInfo, env: str) -> list[dict[str, Any]]:
    """Every apply of `info` to `env`, oldest first; an unreadable one as `{"raw": value}`."""
    found = []
    for key, raw in info.tags.items():
        if not _is_record(key, env):
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        found.append(record if isinstance(record, dict) else {"raw": raw})
    return sorted(found, key=lambda r: str(r.get("time", "")))
