"""The DVC pipeline (`dvc.yaml`): what its stages write, whether it is stale, and new data.

Stages are `mlops` verbs (ingest → validate → train → evaluate); this module holds what they
do besides the existing training code: the reports DVC tracks as metrics and plots (small JSON
and CSV files under `reports/`, committed with `dvc.lock`, rounded so that the same data and
parameters give the same bytes and so the same lock), the stale-pipeline check PR CI runs, the
metrics/params diff it posts, and `add_data` (validate a new file, `dvc add` it, point the
pipeline at it, commit).

The model itself is not a DVC output: it lives in MLflow, and the run id travels from the train
stage to the evaluate stage in `build/pipeline/run.json`, which DVC does not track (a run id is
new on every run; tracked, it would change the lock on every reproduction).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.adapters import dvc
from ml.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np
    import pandas as pd

    from ml.evaluate import Evaluation
    from ml.registry import VersionInfo

PARAMS_FILE = "params.yaml"
RUN_FILE = Path("build/pipeline/run.json")
DIGITS = 6
"""Rounding of every figure a stage writes: the lock must not depend on float noise."""


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Stable JSON (sorted keys, trailing newline): the same payload gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def rounded(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metrics rounded to `DIGITS` places."""
    return {k: round(float(v), DIGITS) for k, v in metrics.items()}


def validation_report(frame: pd.DataFrame, sha256: str) -> dict[str, Any]:
    """The validate stage's report: the contract checks passed on this many rows of this file."""
    from ml.features import TARGET
    from ml.validation import validate

    checks = validate(frame)
    return {
        "sha256": sha256,
        "rows": len(frame),
        "columns": frame.shape[1],
        "default_rate": round(float(frame[TARGET].mean()), DIGITS),
        "checks_passed": len(checks),
    }


def run_id_from(path: Path) -> str:
    """The champion run id the train stage left in `path`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8").strip().splitlines()[-1])
        return str(data["run_id"])
    except (OSError, IndexError, ValueError, KeyError, TypeError):
        raise DataError(
            f"{path} holds no champion run id: run the train stage first (`dvc repro train`)"
        ) from None


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> str:
    """The ROC curve as CSV (`fpr,tpr`), 4 decimals: the evaluate stage's DVC plot."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, scores)
    seen: list[str] = []
    for f, t in zip(fpr, tpr, strict=True):
        row = f"{f:.4f},{t:.4f}"
        if not seen or seen[-1] != row:
            seen.append(row)
    return "fpr,tpr\n" + "\n".join(seen) + "\n"


def evaluation_metrics(evaluation: Evaluation, kind: str) -> dict[str, Any]:
    """The evaluate stage's metrics file."""
    return {"model_type": kind, **rounded(evaluation.as_metrics())}


# --- did the pipeline make anything new? -------------------------------------------------------


def registered_from_lock(
    versions: Iterable[VersionInfo], lock_sha256: str | None
) -> VersionInfo | None:
    """The newest version registered from exactly this `dvc.lock` (tag `dvc_lock_sha256`).

    The lock names the data object, every parameter and the md5 of the training metrics: a
    version carrying the same lock's hash is the model this pipeline state produces. That is
    how `mlops data register` knows a scheduled run whose `dvc repro` ran nothing (or reran to
    the same bytes) has nothing to register, on a fresh checkout as well as in a persistent one.
    """
    from ml.lineage import LOCK_TAG

    if not lock_sha256:
        return None
    same = [v for v in versions if v.tags.get(LOCK_TAG) == lock_sha256]
    return max(same, key=lambda v: v.version) if same else None


def nothing_changed_line(version: VersionInfo, lock_sha256: str) -> str:
    """What a run that registers nothing says: which data is already which version."""
    from ml.lineage import DATA_MD5_TAG, DATA_PATH_TAG

    md5 = version.tags.get(DATA_MD5_TAG, "unknown")
    path = version.tags.get(DATA_PATH_TAG, "the pipeline's data")
    return (
        f"Nothing changed: data {path} (DVC md5 {md5}) with the params of dvc.lock "
        f"(sha256 {lock_sha256[:12]}) is already registered as {version.name} version "
        f"{version.version} (run {version.run_id}). No new version, no pull request."
    )


def no_run_message(run_file: Path, model_name: str, lock_sha256: str | None) -> str:
    """Why `data register` has nothing to register when no version matches the lock either."""
    lock = f"dvc.lock (sha256 {lock_sha256[:12]})" if lock_sha256 else "no dvc.lock"
    return (
        f"{run_file} holds no champion run, and no version of {model_name} was registered from "
        f"{lock}: the lock was committed from a run nobody registered. Train it here with "
        "`mlops data repro --force`, then run `mlops data register` again"
    )


# --- is the committed lock the pipeline's state? ---------------------------------------------


@dataclass(frozen=True)
class StaleStage:
    """A stage whose dependencies, parameters or command changed since `dvc.lock`."""

    stage: str
    changes: tuple[str, ...]

    def line(self) -> str:
        """One line naming the stage and what changed."""
        return f"stage {self.stage}: {'; '.join(self.changes)}"


def stale_stages(status: Mapping[str, Any]) -> list[StaleStage]:
    """The stages `dvc status --json` reports as changed by git-tracked inputs.

    Missing data (`deleted`, `not in cache`) is not staleness: a checkout that did not `dvc
    pull` lacks the files but its lock can still be right. A changed command, a changed
    parameter, or a changed dependency that is present is.
    """
    found = []
    for stage, entries in status.items():
        changes: list[str] = []
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, str):
                changes.append(entry)
                continue
            if not isinstance(entry, dict):
                continue
            for path, state in (entry.get("changed deps") or {}).items():
                if isinstance(state, dict):  # a params file: {"modified": [...]} and the like
                    detail = ", ".join(
                        f"{how} {', '.join(keys) if isinstance(keys, list) else keys}"
                        for how, keys in state.items()
                    )
                    changes.append(f"params {path}: {detail}")
                elif state not in ("deleted", "not in cache"):
                    changes.append(f"{path} {state}")
            if entry.get("changed command"):
                changes.append("command changed")
        if changes:
            found.append(StaleStage(stage.split(":")[-1], tuple(changes)))
    return found


def stale_message(stale: list[StaleStage]) -> str:
    """What a stale pipeline fails with: every stage, and the fix."""
    lines = "\n".join(f"  - {s.line()}" for s in stale)
    return (
        f"dvc.lock is stale ({len(stale)} stage{'s' if len(stale) > 1 else ''}):\n{lines}\n"
        "Fix: `dvc pull && dvc repro` (or `make dvc-repro`), then commit dvc.lock and reports/."
    )


# --- the PR comment: metrics and params against a base revision -----------------------------


def diff_markdown(root: Path, base: str) -> str:
    """`dvc metrics diff` and `dvc params diff` against `base`, as one markdown section."""
    metrics = dvc.run(root, "metrics", "diff", base, "--md").strip()
    params = dvc.run(root, "params", "diff", base, "--md").strip()
    return "\n".join(
        [
            f"### Data pipeline (DVC) against `{base}`",
            "",
            "**Metrics** (`dvc metrics diff`)",
            "",
            metrics or "No metric changed.",
            "",
            "**Parameters** (`dvc params diff`)",
            "",
            params or "No parameter changed.",
            "",
        ]
    )


# --- new data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedData:
    """A file `add_data` put under DVC and pointed the pipeline at."""

    path: str
    sha256: str
    md5: str
    rows: int
    pointer: str
    pushed: bool
    commit: str | None


def _sha256_of_csv(path: Path) -> str:
    from ml.data import _read_bytes

    return hashlib.sha256(_read_bytes(path)).hexdigest()


def add_data(
    root: Path, file: Path, *, name: str | None = None, push: bool = True, commit: bool = True
) -> AddedData:
    """Validate `file` against the contract, `dvc add` it, point `params.yaml` at it, commit.

    Nothing is copied, added, pushed or committed unless the whole file passes: ingest
    (parses as CSV) and every check of `ml.validation`.

    Raises:
        DataError / DataValidationError: the file is unreadable or out of contract.
        ConfigError: the target is tracked by git already (the committed seed data set).
    """
    from ml.adapters import git
    from ml.data import ingest

    if not file.is_file():
        raise DataError(f"{file}: no such file")
    sha256 = _sha256_of_csv(file)
    frame, snapshot = ingest(str(file), sha256)
    validation_report(frame, sha256)  # raises, naming every failed check

    filename = name or file.name
    if "/" in filename or filename.startswith(".") or filename.endswith(".dvc"):
        raise ConfigError(f"--name {filename!r}: a plain file name under data/, e.g. 2026-11.csv")
    target = root / "data" / filename
    rel = target.relative_to(root).as_posix()
    if _git_tracked(root, rel):
        raise ConfigError(f"{rel} is tracked by git: add the new data under another name (--name)")
    copied = file.resolve() != target.resolve()
    if copied:
        shutil.copyfile(file, target)
    try:
        dvc.run(root, "add", rel)
    except DataError:
        if copied:  # leave nothing behind that git or DVC would pick up later
            target.unlink(missing_ok=True)
        raise
    pointer = f"{rel}.dvc"
    md5 = next(o.md5 for o in dvc.tracked_files(root) if o.path == rel)
    _point_params(root / PARAMS_FILE, rel, sha256)
    if push:
        dvc.run(root, "push", pointer)
    sha = None
    if commit:
        paths = [pointer, "data/.gitignore", PARAMS_FILE]
        git.git("add", "--", *paths, cwd=root)
        git.git(
            "commit",
            "-m",
            f"data: train on {rel} ({snapshot.rows} rows, sha256 {sha256[:12]})",
            "--",
            *paths,
            cwd=root,
        )
        sha = git.git("rev-parse", "HEAD", cwd=root).strip()
    return AddedData(rel, sha256, md5, snapshot.rows, pointer, push, sha)


def _git_tracked(root: Path, rel: str) -> bool:
    from ml.adapters import git
    from ml.errors import GitHubError

    try:
        return bool(git.git("ls-files", "--", rel, cwd=root).strip())
    except GitHubError:
        return False


def _point_params(path: Path, rel: str, sha256: str) -> None:
    """Set `data.path` and `data.sha256` in params.yaml, keeping its comments."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if data is None or not isinstance(data.get("data"), dict):
        raise ConfigError(f"{path} has no `data:` mapping (path, sha256) for the pipeline")
    data["data"]["path"] = rel
    data["data"]["sha256"] = sha256
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
