"""All of a command's output files appear together, complete, or not at all.

Every verb that writes files (`mlops predict`, `monitor drift`, `data check`) declares its
destinations up front:

    with AtomicOutputs([scores, rejects]) as out:
        write(out.temporary(scores)); write(out.temporary(rejects))
        out.commit()

- Before any work, each destination is checked: its folder exists (or can be created, where the
  verb allows it), is writable, and the path is not a folder. A failure is one `OutputError`
  (exit 2) naming the path.
- Temporaries are written in a staging folder inside each destination's folder (same file
  system, so the final rename is atomic), named `.mlops-staging-<pid>-<random>`.
- `commit` renames them all at the end, with SIGINT/SIGTERM held off for those few renames, so
  a reader never sees new scores next to old rejects.
- On any exception, SIGINT or SIGTERM (the CLI turns it into an exception) the staging folders
  are removed. SIGKILL cannot be handled: it leaves a staging folder, hidden and never mistaken
  for a result; the next run writing to the same folder removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from ml.errors import OutputError

STAGING_PREFIX = ".mlops-staging-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, prefix: str = STAGING_PREFIX) -> list[Path]:
    """Remove `folder/<prefix><pid>-*` left by processes that no longer run (SIGKILL)."""
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if not entry.name.startswith(prefix):
                continue
            pid = entry.name.removeprefix(prefix).split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def scratch_dir(parent: Path, prefix: str = STAGING_PREFIX) -> Path:
    """A new folder `parent/<prefix><pid>-<random>` (stale ones of dead processes removed)."""
    remove_stale(parent, prefix)
    path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    return path


def _why(exc: OSError) -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENOENT: "a folder on the way does not exist",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
    }
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


class AtomicOutputs:
    """A group of output files written to temporaries and renamed into place together."""

    def __init__(self, paths: Iterable[Path], *, create_folders: bool = False) -> None:
        self.paths = [Path(p) for p in paths]
        self.create_folders = create_folders
        self._staging: dict[Path, Path] = {}  # destination folder → its staging folder
        self._created: list[Path] = []  # folders made here: removed again if nothing lands
        self._committed = False

    def __enter__(self) -> AtomicOutputs:
        try:
            self.prepare()
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.discard()

    def prepare(self) -> None:
        """Check every destination and make its staging folder; `OutputError` naming the first
        path that cannot be written."""
        for path in self.paths:
            folder = path.parent
            if path.is_dir():
                raise OutputError(f"cannot write {path}: it is a folder; name a file")
            if not folder.is_dir():
                if not self.create_folders or folder.exists():
                    raise OutputError(
                        f"cannot write {path}: folder {folder} does not exist; create it first"
                    )
                missing = [folder, *(p for p in folder.parents if not p.exists())]
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    self._created += missing
                except OSError as exc:
                    raise OutputError(
                        f"cannot write {path}: cannot create folder {folder}: {_why(exc)}"
                    ) from None
            if folder in self._staging:
                continue
            try:
                self._staging[folder] = scratch_dir(folder)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {_why(exc)} in {folder}") from None

    def temporary(self, path: Path) -> Path:
        """Where to write what will become `path`."""
        path = Path(path)
        if path not in self.paths:
            raise ValueError(f"{path} is not one of the declared outputs")
        return self._staging[path.parent] / path.name

    def staging_folder(self, folder: Path) -> Path:
        """The staging folder of a destination folder (for writers that take a folder)."""
        return self._staging[Path(folder)]

    def commit(self) -> None:
        """Rename every temporary into place (each must exist), signals held off meanwhile;
        then remove the staging folders. `OutputError` naming the path if a rename fails."""
        for path in self.paths:
            if not self.temporary(path).is_file():
                raise OutputError(f"cannot write {path}: nothing was written for it")
        blocked = {signal.SIGINT, signal.SIGTERM}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for path in self.paths:
                try:
                    os.replace(self.temporary(path), path)
                except OSError as exc:
                    raise OutputError(f"cannot write {path}: {_why(exc)}") from None
            self._committed = True
        finally:
            self.discard()
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def discard(self) -> None:
        """Remove every staging folder and what is in it."""
        for staging in self._staging.values():
            shutil.rmtree(staging, ignore_errors=True)
        self._staging.clear()
        if not self._committed:
            for folder in self._created:  # deepest first; only if still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        self._created.clear()


@contextlib.contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """An OSError while writing `path` (a full disk, a vanished folder) as one `OutputError`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_why(exc)}") from None


def write_text(path: Path, text: str) -> None:
    """Write one small text output whole or not at all: a temporary in the destination's
    folder (created if missing), renamed into place; `OutputError` naming the path on failure."""
    with AtomicOutputs([path], create_folders=True) as outputs:
        temporary = outputs.temporary(path)
        with write_errors(path):
            temporary.write_text(text, encoding="utf-8")
        outputs.commit()
