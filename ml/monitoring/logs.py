"""Read the serving prediction log back: one row per scored record, with its version and time.

The log is the one serve writes (`serve.logging`): one JSON object per request, with the records
as sent, the probabilities and the decisions. It is read from wherever it ended up:

- a file or a folder of files (plain or gzip), e.g. `docker compose logs api > api.log`;
- an `s3://bucket/prefix`: every object under the prefix, plain or gzip;
- a CloudWatch Logs export to S3 (`<prefix>/<task>/<stream>/000000.gz`, each line
  `<ISO time> <message>`).

Each line is decoded from its first `{`, so prefixes (the CloudWatch export's timestamp, compose's
`api-1  | `) need no configuration. Lines that do not mention `"prediction"` are someone else's
(uvicorn, warnings) and are ignored; prediction lines that do not decode or do not add up are
*malformed*: counted, skipped, and fatal only above `max_malformed_share`. A line that carries
reason codes (`reasons`: per record, the declined record's codes or null; present only when the
caller asked for reasons) is read like one without them; the codes are counted in `ReadStats`.

msgspec decodes each line into a typed struct (about 3 µs for a one-record line); the records
become one float64 matrix per file. pandas is imported only to hand the result over.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import numpy as np

from ml.adapters import aws
from ml.errors import ConfigError, DataError, UnreachableError
from ml.monitoring.contract import feature_specs

if TYPE_CHECKING:
    import pandas as pd

# Columns of the frame `read_predictions` returns besides the features.
SCORE = "score"
APPROVED = "approved"
VERSION = "model_version"
MODEL = "model"
TS = "ts"

_MARKER = b'"prediction"'
_FEATURES = tuple(spec.name for spec in feature_specs())
# Missing features decode as None (→ NaN), so a missing value is counted, not a malformed line.
_Record = msgspec.defstruct("_Record", [(name, float | None, None) for name in _FEATURES])


_BLOCK = 65_536
_Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class _Line(msgspec.Struct):
    """One prediction line; msgspec checks types, ranges and the two enums while decoding."""

    event: Literal["prediction"]
    ts: float
    model: str
    model_version: Annotated[str, msgspec.Meta(min_length=1)]
    features: list[_Record]  # type: ignore[valid-type]
    probability: list[_Probability]
    decision: list[Literal["approve", "decline"]]
    # Reason codes (feature names) per record, null for a record given none; absent from
    # lines of requests that did not ask for reasons (and from logs written before them).
    reasons: list[list[str] | None] | None = None


_DECODER = msgspec.json.Decoder(_Line)


@dataclass
class ReadStats:
    """What reading saw: counts, and where the first malformed line was."""

    sources: int = 0
    lines: int = 0
    requests: int = 0
    records: int = 0
    malformed: int = 0
    ignored: int = 0
    outside_window: int = 0
    first_malformed: str | None = None
    versions: Counter[str] = field(default_factory=Counter)
    explained: int = 0  # records logged with reason codes
    reason_codes: Counter[str] = field(default_factory=Counter)  # code -> records it was given

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the summary."""
        return {
            "sources": self.sources,
            "lines": self.lines,
            "requests": self.requests,
            "records": self.records,
            "malformed": self.malformed,
            "ignored": self.ignored,
            "outside_window": self.outside_window,
            "first_malformed": self.first_malformed,
            "versions": dict(sorted(self.versions.items())),
            "explained": self.explained,
            "reason_codes": dict(self.reason_codes.most_common()),
        }


@dataclass(frozen=True)
class Window:
    """Keep requests with `start <= ts < end` (epoch seconds); None leaves that side open."""

    start: float | None = None
    end: float | None = None

    def contains(self, ts: float) -> bool:
        """True when `ts` falls inside."""
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


class _Batch:
    """Columns grown line by line; records become float64 blocks every `_BLOCK` records.

    A decoded record holds 23 Python floats (~800 bytes); a row of the matrix holds 184 bytes.
    Converting as we go keeps a million predictions under 1 GiB instead of near 2.
    """

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.blocks: list[np.ndarray] = []
        self.scores: list[float] = []
        self.approved: list[bool] = []
        self.versions: list[str] = []
        self.models: list[str] = []
        self.ts: list[float] = []

    def seal(self) -> None:
        """Turn the pending records into one float64 block."""
        if self.records:
            rows = [msgspec.structs.astuple(r) for r in self.records]
            self.blocks.append(np.array(rows, dtype=np.float64).reshape(-1, len(_FEATURES)))
            self.records = []

    def matrix(self) -> np.ndarray:
        """Every record so far, one row each, in contract order."""
        self.seal()
        if len(self.blocks) == 1:
            return self.blocks[0]
        return np.concatenate(self.blocks) if self.blocks else np.empty((0, len(_FEATURES)))


def _check(line: _Line) -> str | None:
    """What decoding cannot check: the three lists line up."""
    n = len(line.features)
    if n == 0:
        return "no records"
    if len(line.probability) != n or len(line.decision) != n:
        return (
            f"{n} records but {len(line.probability)} probabilities, {len(line.decision)} decisions"
        )
    if line.reasons is not None and len(line.reasons) != n:
        return f"{n} records but {len(line.reasons)} reason lists"
    return None


def _open_local(path: Path) -> IO[bytes]:
    fh: IO[bytes] = path.open("rb")
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def _local_sources(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    if path.is_file():
        yield str(path), _open_local(path)
        return
    if not path.is_dir():
        raise DataError(
            f"prediction log not found: {path} (pass a file, a folder, or s3://bucket/prefix)"
        )
    for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        yield str(child), _open_local(child)


def _s3_sources(uri: str) -> Iterator[tuple[str, IO[bytes]]]:
    # AWS_ENDPOINT_URL points the client at moto in tests.
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise DataError(f"s3 URI needs a bucket: {uri} (e.g. s3://logs-bucket/exports/api/)")
    from ml.waits import AWS_MAX_ATTEMPTS, boto_config, is_connection_failure

    client = aws.client("s3", config=boto_config())
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
        for key in keys:
            if key.endswith("/"):
                continue
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            if body[:2] == b"\x1f\x8b":
                try:
                    body = gzip.decompress(body)
                except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    raise DataError(
                        f"s3://{bucket}/{key}: the gzip data is cut short or corrupt ({exc}); "
                        "replace the object, then rerun"
                    ) from exc
            yield f"s3://{bucket}/{key}", io.BytesIO(body)
    except (BotoCoreError, ClientError) as exc:
        if is_connection_failure(exc):
            raise UnreachableError(
                f"S3 did not answer for {uri} ({AWS_MAX_ATTEMPTS} attempts): {exc}; check the "
                "network, AWS_ENDPOINT_URL and the region, then rerun"
            ) from None
        raise DataError(
            f"cannot read {uri}: {exc} (check the bucket, the prefix and the AWS credentials)"
        ) from None


def _broken(name: str, lines: int, exc: BaseException) -> str:
    """One line naming a log file that ends early or is corrupt, and where."""
    from ml.data import gzip_damage

    path = Path(name)
    damage = gzip_damage(path) if path.is_file() else None
    where = damage or f"unreadable after line {lines:,}: {exc}"
    return f"{name}: {where} (remove or replace the file, then rerun)"


def sources(location: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, binary stream) for every log file at `location` (path, folder or s3:// prefix)."""
    if location.startswith("s3://"):
        yield from _s3_sources(location)
    else:
        yield from _local_sources(Path(location.removeprefix("file://")))


def _read_stream(
    name: str, stream: Iterable[bytes], window: Window, stats: ReadStats, batch: _Batch
) -> None:
    for number, raw in enumerate(stream, start=1):
        stats.lines += 1
        if _MARKER not in raw:
            stats.ignored += 1
            continue
        start = raw.find(b"{")
        reason: str | None
        try:
            line = _DECODER.decode(raw[start:] if start > 0 else raw)
            reason = _check(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            reason = str(exc)
        if reason is not None:
            stats.malformed += 1
            if stats.first_malformed is None:
                stats.first_malformed = f"{name}:{number}: {reason}"
            continue
        if not window.contains(line.ts):
            stats.outside_window += 1
            continue
        n = len(line.features)
        stats.requests += 1
        stats.records += n
        stats.versions[line.model_version] += n
        if line.reasons is not None:
            for codes in line.reasons:
                if codes is not None:
                    stats.explained += 1
                    stats.reason_codes.update(codes)
        batch.records.extend(line.features)
        if len(batch.records) >= _BLOCK:
            batch.seal()
        batch.scores.extend(line.probability)
        if n == 1:  # the common case: one record per request
            batch.approved.append(line.decision[0] == "approve")
            batch.versions.append(line.model_version)
            batch.models.append(line.model)
            batch.ts.append(line.ts)
        else:
            batch.approved.extend([d == "approve" for d in line.decision])
            batch.versions.extend([line.model_version] * n)
            batch.models.extend([line.model] * n)
            batch.ts.extend([line.ts] * n)


def read_predictions(
    location: str, window: Window | None = None, max_malformed_share: float = 0.01
) -> tuple[pd.DataFrame, ReadStats]:
    """Every logged record in `window`: the features, `score`, `approved`, version, model, time.

    Raises:
        DataError: nothing readable at `location`, no prediction in the window, or more malformed
            prediction lines than `max_malformed_share` (the message names the first one).
    """
    import pandas as pd

    window = window or Window()
    stats = ReadStats()
    batch = _Batch()
    for name, stream in sources(location):
        stats.sources += 1
        lines_before = stats.lines
        with stream:
            try:
                _read_stream(name, stream, window, stats, batch)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise DataError(_broken(name, stats.lines - lines_before, exc)) from exc
    if stats.sources == 0:
        raise DataError(f"no log files at {location} (is the prefix or folder right?)")
    seen = stats.requests + stats.malformed + stats.outside_window
    if seen and stats.malformed / seen > max_malformed_share:
        raise DataError(
            f"{stats.malformed} of {seen} prediction lines in {location} are malformed "
            f"(more than {max_malformed_share:.1%}); first: {stats.first_malformed}. Fix the log "
            "source, or raise logs.max_malformed_share in config/monitoring.yaml"
        )
    if stats.records == 0:
        where = f"{stats.sources} files, {stats.lines} lines"
        hint = (
            f"{stats.outside_window} requests fall outside the window: widen --window or --end"
            if stats.outside_window
            else "point --logs at the serving logs (serve writes one JSON line per request to "
            "stdout while SERVE_LOG_PREDICTIONS=true)"
        )
        raise DataError(f"no predictions in {location} ({where}); {hint}")
    frame = pd.DataFrame(batch.matrix(), columns=list(_FEATURES), copy=False)
    frame[SCORE] = np.asarray(batch.scores, dtype=np.float64)
    frame[APPROVED] = np.asarray(batch.approved, dtype=bool)
    frame[VERSION] = pd.Categorical(batch.versions)
    frame[MODEL] = pd.Categorical(batch.models)
    frame[TS] = np.asarray(batch.ts, dtype=np.float64)
    return frame, stats


def parse_duration(text: str) -> float:
    """'90m', '24h', '7d', '3600' (seconds) → seconds.

    Raises:
        ConfigError: not a positive duration.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    factor = units.get(value[-1:])
    number = value[:-1] if factor else value
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ConfigError(f"bad duration {text!r}: use e.g. 3600, 90m, 24h or 7d")
    return seconds
