"""The Spark job's code bundle: what `mlops spark submit` runs, built byte for byte the same
from the same tree, and uploaded to the batch bucket's `code/` prefix.

Three files (docs/spark.md, where the jobs run):
- `entry.py`: the driver's entry point (ml/spark/entry.py);
- `code.zip`: the `ml` and `serve` packages (Python files and their `py.typed` only), given to
  spark-submit as `spark.submit.pyFiles`, so the driver and every executor import this code,
  whatever the packed environment holds;
- `project.tar.gz`: `config/` and `data/`, unpacked as `project/` beside the driver (the
  training config, gates and the default data set the verbs read).

The third-party environment (`venv.tar.gz`, a venv-pack of `uv sync --extra spark` built for
the application's architecture) is not built here: it changes with the lock file, not with the
code, and must be built on the workers' architecture.

Deterministic: entries sorted, timestamps fixed (1980-01-01 in the zip, 0 in the tar and its
gzip header), owner and mode normalised, so one commit gives one digest (printed, and compared
by a rebuild). Only allow-listed files go in; anything that looks like a credential is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ml.errors import ConfigError

ENTRY = "entry.py"
CODE_ZIP = "code.zip"
PROJECT_ARCHIVE = "project.tar.gz"
PACKAGES = ("ml", "serve")
PROJECT_DIRS = ("config", "data")
_PROJECT_SUFFIXES = (".yaml", ".yml", ".json", ".md", ".csv.gz", ".csv")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Names and contents that must never be shipped: key files, env files, cloud credentials.
SECRET_NAMES = re.compile(r"(^|/)(\.env(\..*)?|.*\.(pem|key|p12|pfx)|id_rsa.*|credentials)$")
SECRET_TEXT = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|ghp_[0-9A-Za-z]{36}"
)


@dataclass(frozen=True)
class Bundle:
    """The built files and their sha256 digests, by name."""

    directory: Path
    digests: dict[str, str]

    @property
    def paths(self) -> list[Path]:
        """The files, in upload order (the entry point last: a job never finds it first)."""
        return [self.directory / n for n in (CODE_ZIP, PROJECT_ARCHIVE, ENTRY)]


def _package_files(root: Path) -> list[str]:
    names = []
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            wanted = path.suffix == ".py" or path.name == "py.typed"
            if wanted and path.is_file() and "__pycache__" not in path.parts:
                names.append(path.relative_to(root).as_posix())
    return sorted(names)


def _project_files(root: Path) -> list[str]:
    names = []
    for directory in PROJECT_DIRS:
        for path in (root / directory).rglob("*"):
            if path.is_file() and path.name.endswith(_PROJECT_SUFFIXES):
                names.append(path.relative_to(root).as_posix())
    return sorted(names)


def _checked(root: Path, name: str) -> bytes:
    data = (root / name).read_bytes()
    if SECRET_NAMES.search(name) or SECRET_TEXT.search(data):
        raise ConfigError(
            f"{name} looks like a credential: it is never put in the job bundle (hint: keep "
            "secrets in Secrets Manager; the job reads the registry secret at run time)"
        )
    return data


def _zip(root: Path, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _checked(root, name))
    return buffer.getvalue()


def _tar_gz(root: Path, names: list[str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in names:
            data = _checked(root, name)
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as out:
        out.write(raw.getvalue())
    return packed.getvalue()


def build(root: Path, output: Path) -> Bundle:
    """Build the bundle of the tree at `root` into `output` (created; its three files replaced).

    Raises:
        ConfigError: the tree lacks a package or directory, or a file looks like a credential.
    """
    for needed in (*PACKAGES, *PROJECT_DIRS):
        if not (root / needed).is_dir():
            raise ConfigError(f"{root / needed} not found: build the bundle from the repository")
    contents = {
        CODE_ZIP: _zip(root, _package_files(root)),
        PROJECT_ARCHIVE: _tar_gz(root, _project_files(root)),
        ENTRY: _checked(root, "ml/spark/entry.py"),
    }
    output.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (output / name).write_bytes(data)
    return Bundle(output, {n: hashlib.sha256(d).hexdigest() for n, d in contents.items()})


def upload(bundle: Bundle, code_uri: str, region: str | None = None) -> list[str]:
    """Upload the bundle under `code_uri` (s3://bucket/prefix/); return the object URIs.

    Each object carries its sha256 as metadata, so what a job ran can be traced to a build.

    Raises:
        ConfigError: `code_uri` is not an s3:// prefix.
        UnreachableError: S3 refused or did not answer.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ml.adapters import aws
    from ml.errors import UnreachableError

    if not code_uri.startswith("s3://"):
        raise ConfigError(f"ML_SPARK_CODE_URI must be an s3:// prefix, got {code_uri!r}")
    bucket, _, prefix = code_uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    s3 = aws.client("s3", region)
    uploaded = []
    for path in bundle.paths:
        key = f"{prefix}{path.name}"
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=path.read_bytes(),
                Metadata={"sha256": bundle.digests[path.name]},
            )
        except (BotoCoreError, ClientError) as exc:
            raise UnreachableError(
                f"cannot upload {path.name} to s3://{bucket}/{key}: {exc}"
            ) from None
        uploaded.append(f"s3://{bucket}/{key}")
    return uploaded
