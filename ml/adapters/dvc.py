"""The DVC adapter: the only module that runs the `dvc` executable or reads DVC's files.

DVC lives in its own environment (`.venv-dvc`, `make dvc-install`): dvc-s3 pulls aiobotocore,
which pins botocore to a narrow range that the application's boto3/MLflow lock does not allow
(mk/dvc.mk). So the application never imports `dvc`; it runs the executable, found as
`$DVC_BIN`, else `.venv-dvc/bin/dvc` in the repository (or in the checkout `ml` is installed
from), else `dvc` on the PATH.

Every call sets two environment defaults: analytics off (`DVC_NO_ANALYTICS`, besides
`core.analytics false` in the committed config) and `AWS_REQUEST_CHECKSUM_CALCULATION=
WHEN_REQUIRED`: botocore >= 1.36 adds CRC checksums to every upload, which S3-compatible stores
(MinIO before 2025, Ceph, some emulators) reject; DVC addresses every object by its md5, so the
extra checksum adds nothing.

The remote layout is DVC 3's: an object of md5 `abcd...` is `<remote url>/files/md5/ab/cd...`.
The existence check reads it with boto3 (credentials and `AWS_ENDPOINT_URL` from the
environment, as DVC's own).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from ml.adapters import aws
from ml.errors import ConfigError, DataError

LOCK_FILE = "dvc.lock"
DVC_TIMEOUT_S = 1800
_ENV_DEFAULTS = {
    "DVC_NO_ANALYTICS": "1",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
}


@dataclass(frozen=True)
class LockedOutput:
    """One output of a stage as `dvc.lock` records it."""

    stage: str
    path: str
    md5: str
    size: int | None


def repo_root(start: Path | None = None) -> Path:
    """The DVC repository holding `start` (the folder with `.dvc/`), else `start` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return here


def binary(root: Path) -> str:
    """The `dvc` executable this repository uses.

    Raises:
        ConfigError: none is installed, with the command that installs it.
    """
    explicit = os.environ.get("DVC_BIN")
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError(f"DVC_BIN={explicit} does not exist (hint: `make dvc-install`)")
        return explicit
    # The repository's own environment, else the one next to this installation's checkout.
    for base in (root, Path(__file__).resolve().parents[2]):
        local = base / ".venv-dvc" / "bin" / "dvc"
        if local.is_file():
            return str(local)
    found = shutil.which("dvc")
    if found:
        return found
    raise ConfigError(
        "dvc is not installed: run `make dvc-install` (DVC's own locked environment, "
        ".venv-dvc) or set DVC_BIN to a dvc 3.x executable"
    )


def environment() -> dict[str, str]:
    """The environment `dvc` runs with: the caller's plus the defaults above.

    The stages' commands are `mlops` verbs: this interpreter's `bin` goes first on the PATH, so
    they run the same installation as the process that started DVC.
    """
    env = {**_ENV_DEFAULTS, **os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(root: Path, *args: str, timeout: float = DVC_TIMEOUT_S) -> str:
    """Run `dvc ARGS` in `root` and return its stdout.

    Raises:
        DataError: dvc exited non-zero (its last lines of output name the problem).
    """
    command = [binary(root), *args]
    try:
        done = subprocess.run(
            command,
            cwd=root,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"dvc {' '.join(args)} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
        raise DataError(f"dvc {' '.join(args)} failed: {' | '.join(detail)}")
    return done.stdout


def read_lock(root: Path) -> dict[str, Any]:
    """`dvc.lock` parsed; an empty mapping when the pipeline never ran."""
    path = root / LOCK_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({exc}); restore it from git") from None
    return data if isinstance(data, dict) else {}


def lock_sha256(root: Path) -> str | None:
    """sha256 of `dvc.lock`'s bytes (None without one): names the exact pipeline state."""
    path = root / LOCK_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def locked_outputs(root: Path) -> list[LockedOutput]:
    """Every stage output `dvc.lock` records, with its md5."""
    found = []
    for stage, entry in (read_lock(root).get("stages") or {}).items():
        for out in entry.get("outs") or []:
            if out.get("md5"):
                found.append(LockedOutput(stage, out["path"], out["md5"], out.get("size")))
    return found


def tracked_files(root: Path) -> list[LockedOutput]:
    """Every file a `.dvc` pointer tracks (data added with `dvc add`), stage name `""`."""
    found = []
    for pointer in sorted(root.glob("data/**/*.dvc")):
        data = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
        for out in data.get("outs") or []:
            if out.get("md5"):
                path = (pointer.parent / out["path"]).relative_to(root).as_posix()
                found.append(LockedOutput("", path, out["md5"], out.get("size")))
    return found


def _config(root: Path) -> dict[str, dict[str, str]]:
    """`.dvc/config` then `.dvc/config.local` (configobj INI: indented keys, quoted sections)."""
    sections: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        path = root / ".dvc" / name
        if not path.is_file():
            continue
        current: dict[str, str] = {}
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                title = line[1:-1].strip().strip("'")
                current = sections.setdefault(" ".join(title.replace('"', " ").split()), {})
            elif "=" in line:
                key, _, value = line.partition("=")
                current[key.strip()] = value.strip()
    return sections


def remote_url(root: Path) -> str | None:
    """URL of the default remote (`.dvc/config`, overridden by `.dvc/config.local`)."""
    sections = _config(root)
    name = sections.get("core", {}).get("remote")
    if not name:
        return None
    return sections.get(f"remote {name}", {}).get("url")


def object_url(remote: str, md5: str) -> str:
    """Where DVC 3 keeps the object with `md5` in `remote`."""
    return f"{remote.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


def remote_has(remote: str, md5: str) -> bool:
    """Whether the object with `md5` exists in the S3 (or local folder) remote `remote`.

    Raises:
        DataError: the remote cannot be asked (no credentials, unreachable, other scheme).
    """
    url = object_url(remote, md5)
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path).is_file()
    if parsed.scheme != "s3":
        raise DataError(f"cannot check {url}: only s3:// and local remotes are supported")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        aws.client("s3").head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        if code in ("403", "AccessDenied", "Forbidden"):
            # HEAD carries no error body: S3 answers 403 both when the identity may not read the
            # object and when the object is missing and it may not list the prefix.
            raise DataError(
                f"cannot check {url}: 403 Forbidden. Either this identity lacks s3:GetObject on "
                "the remote's objects, or the object is missing and it lacks s3:ListBucket on "
                "the remote's prefix (then S3 says 403, not 404); the terraform policy "
                "`dvc_exists` grants both (docs/data.md)"
            ) from None
        raise DataError(f"cannot check {url}: {exc}") from None
    except BotoCoreError as exc:
        raise DataError(f"cannot check {url}: {exc}") from None
    return True


def status(root: Path) -> dict[str, Any]:
    """`dvc status --json`: stage name → what changed; empty when the pipeline is up to date."""
    out = run(root, "status", "--json").strip()
    try:
        data = json.loads(out or "{}")
    except json.JSONDecodeError:
        raise DataError(f"dvc status printed something that is not JSON: {out[:200]}") from None
    return data if isinstance(data, dict) else {}
