"""Ingest: fetch a dataset snapshot, verify its checksum, load it, and describe what was used.

Sources are a local path, an `http(s)://` URL or an `s3://` URI. The checksum is the sha256 of the
uncompressed CSV, so the same data gzipped or not verifies the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from ml.adapters import aws
from ml.errors import DataError, UnreachableError

_CHUNK = 1 << 20
_SCAN = 1 << 16  # compressed bytes per step of `gzip_damage`: the break is located within this
_DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Snapshot:
    """The exact data a run used: logged with every training run."""

    source: str
    sha256: str
    rows: int
    columns: int
    bytes: int
    ingested_at: str

    def to_json(self) -> str:
        """Stable JSON for the snapshot artifact."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def fetch(source: str, workdir: Path) -> Path:
    """Return a local path holding `source`, downloading it into `workdir` when remote."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        target = workdir / (Path(parsed.path).name or "dataset.csv")
        try:
            with (
                urllib.request.urlopen(source, timeout=_DOWNLOAD_TIMEOUT_S) as response,  # noqa: S310
                target.open("wb") as out,
            ):
                shutil.copyfileobj(response, out, _CHUNK)
        except OSError as exc:
            raise DataError(f"cannot download {source}: {exc}") from exc
        return target
    if parsed.scheme == "s3":
        return _fetch_s3(parsed.netloc, parsed.path.lstrip("/"), workdir)
    if parsed.scheme not in ("", "file"):
        raise DataError(f"unsupported data source scheme {parsed.scheme!r} in {source}")
    path = Path(parsed.path if parsed.scheme == "file" else source)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    return path


def _fetch_s3(bucket: str, key: str, workdir: Path) -> Path:
    # AWS_ENDPOINT_URL points the client at moto in tests.
    from botocore.exceptions import BotoCoreError, ClientError

    if not bucket or not key:
        raise DataError(f"s3 URI needs a bucket and a key: s3://{bucket}/{key}")
    from ml.waits import AWS_MAX_ATTEMPTS, boto_config, is_connection_failure

    target = workdir / Path(key).name
    try:
        aws.client("s3", config=boto_config()).download_file(bucket, key, str(target))
    except (BotoCoreError, ClientError) as exc:
        if is_connection_failure(exc):
            raise UnreachableError(
                f"S3 did not answer for s3://{bucket}/{key} ({AWS_MAX_ATTEMPTS} attempts): "
                f"{exc}; check the network, AWS_ENDPOINT_URL and the region, then rerun"
            ) from exc
        raise DataError(f"cannot download s3://{bucket}/{key}: {exc}") from exc
    return target


def gzip_damage(path: Path) -> str | None:
    """Where a gzip file breaks: None when it is not gzip or decompresses to its end; else the
    compressed byte offset and the line of the text where it stops, and why.

    gzip and pandas report a cut-short file as a bare `EOFError` ("Compressed file ended before
    the end-of-stream marker was reached") that names neither the file nor the place.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return None
        fh.seek(0)
        stream = zlib.decompressobj(wbits=31)
        consumed = lines = text = 0
        while block := fh.read(_SCAN):
            pending = block
            try:
                while pending:
                    data = stream.decompress(pending)
                    lines += data.count(b"\n")
                    text += len(data)
                    pending = b""
                    if stream.eof and stream.unused_data.strip(b"\0"):  # next gzip member
                        pending = stream.unused_data
                        stream = zlib.decompressobj(wbits=31)
            except zlib.error as exc:
                return (
                    f"corrupt gzip data between bytes {consumed:,} and {consumed + len(block):,} "
                    f"of {size:,} (after line {lines:,} of the text): {exc}"
                )
            consumed += len(block)
    if not stream.eof:
        return (
            f"the gzip data is cut short: it ends at byte {size:,} without its end marker "
            f"(after line {lines:,}, {text:,} bytes of text); copy the file again"
        )
    return None


def check_gzip(path: Path, label: str | None = None) -> None:
    """`DataError` naming `label` (default: the path) and where a gzip file breaks, if it does."""
    damage = gzip_damage(path)
    if damage is not None:
        raise DataError(f"{label or path}: {damage}")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        if _is_gzip(path):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        damage = (
            gzip_damage(path) if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile) else None
        )
        raise DataError(f"cannot read {path}: {damage or exc}") from exc


def ingest(source: str, expected_sha256: str | None) -> tuple[pd.DataFrame, Snapshot]:
    """Fetch, verify and parse a CSV snapshot.

    Args:
        source: local path, `http(s)://` URL or `s3://` URI of a CSV (optionally gzipped).
        expected_sha256: sha256 of the uncompressed CSV. Required: an unverified dataset would
            make the data hash tag on every model version meaningless.

    Raises:
        DataError: missing file, download failure, checksum mismatch, empty or unparsable CSV.
    """
    frame, snapshot, _ = _load(source, expected_sha256)
    return frame, snapshot


def stage(source: str, expected_sha256: str | None, out_dir: Path) -> tuple[Path, Snapshot]:
    """Fetch and verify a snapshot once, and keep its verified bytes (the uncompressed CSV).

    The ingest step of an orchestrated retrain: later steps (the data gate) read the staged
    copy, whose sha256 is the snapshot's, instead of fetching the source again.

    Raises:
        DataError: as `ingest`.
        OutputError: the staging folder cannot be written (nothing is left half-written).
    """
    from ml.atomic_output import AtomicOutputs, write_errors

    _, snapshot, raw = _load(source, expected_sha256)
    target = out_dir / f"data-{snapshot.sha256[:16]}.csv"
    with AtomicOutputs([target], create_folders=True) as outputs, write_errors(target):
        outputs.temporary(target).write_bytes(raw)
        outputs.commit()
    return target, snapshot


def _load(source: str, expected_sha256: str | None) -> tuple[pd.DataFrame, Snapshot, bytes]:
    """Fetch, verify and parse; also the verified bytes."""
    if not expected_sha256:
        raise DataError(
            f"no expected sha256 for {source}: pass --data-sha256 "
            "(sha256 of the uncompressed CSV, e.g. `zcat FILE | sha256sum`)"
        )
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        raw = _read_bytes(fetch(source, Path(tmp)))
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256.lower():
        raise DataError(
            f"checksum mismatch for {source}: expected sha256 {expected_sha256}, got {digest}. "
            "The file changed or is the wrong one; fix the file or the expected hash."
        )
    if not raw.strip():
        raise DataError(f"{source} is empty: no header and no rows")
    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot parse {source} as CSV: {exc}") from exc
    if frame.empty:
        raise DataError(f"{source} has a header but no rows")
    snapshot = Snapshot(
        source=source,
        sha256=digest,
        rows=len(frame),
        columns=frame.shape[1],
        bytes=len(raw),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return frame, snapshot, raw
