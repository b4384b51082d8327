"""Data lineage: which DVC object, remote, lock and commit a training run and a version came from.

A run trained on a DVC-tracked file (an output of the `ingest` stage in `dvc.lock`, or a file
added with `dvc add`) records, as tags on the run and then on the version it becomes:

- `dvc_data_md5`: the md5 DVC keeps the file under (the object in the remote);
- `dvc_data_path`: the file's path in the repository;
- `dvc_remote`: the default remote's URL at training time;
- `dvc_lock_sha256`: sha256 of `dvc.lock` once the pipeline has finished (set when the run is
  registered: while `dvc repro` runs, the lock is still being written);
- `git_sha` (set by training for every run).

The training data is also an MLflow dataset input of every candidate run (MLflow's `log_input`),
whose source is the object's URL in the remote and whose digest is its md5.

The `data_in_remote` gate (listed in `ml.promotions.gates.catalog`) refuses a version whose data
object is missing from the remote: a version nobody can rebuild is not promoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ml.adapters import dvc
from ml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from ml.adapters.mlflow_models import ActiveRun

DATA_MD5_TAG = "dvc_data_md5"
DATA_PATH_TAG = "dvc_data_path"
REMOTE_TAG = "dvc_remote"
LOCK_TAG = "dvc_lock_sha256"
LINEAGE_TAGS = (DATA_MD5_TAG, DATA_PATH_TAG, REMOTE_TAG, LOCK_TAG)
"""The tags a version takes over from its run."""


@dataclass(frozen=True)
class Lineage:
    """Where a training file lives in DVC."""

    root: Path
    path: str
    md5: str
    remote: str | None

    def tags(self) -> dict[str, str]:
        """The run tags (without the lock's hash: see `lock_tags`)."""
        tags = {DATA_MD5_TAG: self.md5, DATA_PATH_TAG: self.path}
        if self.remote:
            tags[REMOTE_TAG] = self.remote
        return tags

    @property
    def dataset_source(self) -> str:
        """The object's URL in the remote, else the file's path in the repository."""
        return dvc.object_url(self.remote, self.md5) if self.remote else self.path


def of_file(source: str) -> Lineage | None:
    """The lineage of a local training file, or None when DVC does not track it."""
    if "://" in source and not source.startswith("file://"):
        return None
    path = Path(source.removeprefix("file://")).resolve()
    root = dvc.repo_root(path.parent)
    if not (root / ".dvc").is_dir():
        return None
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return None
    for out in (*dvc.locked_outputs(root), *dvc.tracked_files(root)):
        if out.path == rel:
            return Lineage(root, rel, out.md5, dvc.remote_url(root))
    return None


def lock_tags(run_tags: Mapping[str, str], root: Path | None = None) -> dict[str, str]:
    """`dvc_lock_sha256` for a run whose data the current `dvc.lock` names; else nothing.

    Called when a run is registered (after `dvc repro` wrote the whole lock): the lock is only
    attributed to the run when it records the run's data object at the run's data path.
    """
    md5, rel = run_tags.get(DATA_MD5_TAG), run_tags.get(DATA_PATH_TAG)
    if not md5 or not rel:
        return {}
    root = root or dvc.repo_root()
    outputs = (*dvc.locked_outputs(root), *dvc.tracked_files(root))
    if not any(o.path == rel and o.md5 == md5 for o in outputs):
        return {}
    sha = dvc.lock_sha256(root)
    return {LOCK_TAG: sha} if sha else {}


def log_dataset(
    run: ActiveRun, frame: pd.DataFrame, lineage: Lineage | None, source: str, target: str
) -> None:
    """Log the training data as `run`'s dataset input (context `training`): the DVC object
    (its URL in the remote, digest = its md5) when `lineage` says DVC tracks it, else `source`."""
    run.log_dataset(
        frame,
        source=lineage.dataset_source if lineage else source,
        target=target,
        name=Path(lineage.path if lineage else source).name,
        digest=lineage.md5 if lineage else None,
    )


def data_in_remote(tags: Mapping[str, str], label: str) -> Iterable[tuple[str, bool, str]]:
    """The `data_in_remote` gate for a version's tags; nothing for a version without DVC data.

    Yields one (gate, passed, detail); a remote that cannot be asked fails the gate too (the
    data cannot be shown to exist), with the reason.
    """
    md5, remote = tags.get(DATA_MD5_TAG), tags.get(REMOTE_TAG)
    if not md5 or not remote:
        return
    url = dvc.object_url(remote, md5)
    path = tags.get(DATA_PATH_TAG, "its training data")
    try:
        found = dvc.remote_has(remote, md5)
    except DataError as exc:
        yield "data_in_remote", False, f"{label}: {exc}"
        return
    if found:
        yield "data_in_remote", True, f"{path} (md5 {md5}) is in {remote}"
    else:
        yield (
            "data_in_remote",
            False,
            f"{label} was trained on {path} (md5 {md5}), which is missing from the remote: "
            f"{url} (hint: `dvc push` from a checkout that has it, or retrain on data that is "
            "in the remote)",
        )
