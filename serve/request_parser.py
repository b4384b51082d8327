"""Request body → float32 matrix in signature order, refusing what the signature or the contract
refuses, with errors that name the field and stay small.

The pydantic request model (serve.schemas) defines valid types: it is what the OpenAPI document
shows, and its errors name the field. It is slow per value, so a body first goes through msgspec,
decoded straight into typed structs in C under the same rules: every field required, no unknown
ones, numbers only (no strings, booleans or null), finite and within the same bounds, integers
allowed as integral floats. The fast path only ever accepts; when it refuses, the pydantic model
decides and explains. tests/unit/serve/test_request_parser.py checks that the fast path accepts
nothing the model refuses and produces the same matrix.

The model contract (ml/contract.py) is enforced on both paths. The fast path carries each
feature's range (or its codes' span) as msgspec bounds, so a body in contract costs nothing more;
a body outside it falls to the slow path, where the contract's vectorised check on the parsed
matrix names every violation (record, field, value, what is allowed and why). When the contract
holds something msgspec bounds cannot say (codes with gaps, optional features), the vectorised
check runs after the fast path too. The test checks that the fast path accepts nothing the
contract refuses.

Bounds, so that no body reaches a 500 or a huge answer:
- the body size (SERVE_MAX_BODY_BYTES, serve.routes.predict.read_body);
- the fast path is a typed C decoder: it stops at the first token that does not fit, and its
  recursion guard (a RecursionError on deep nesting) counts as a refusal;
- before the slow path parses anything, `check_structure` bounds nesting depth and the number of
  objects and values by counting brackets and commas (bytes.translate and numpy, no Python loop);
- an error answer lists the first MAX_ERRORS errors with the count of all, each field name and
  message clipped to a few dozen characters.

A key given twice is refused (422 naming it), never "the last one wins": JSON decoders keep the
last, so a client could believe it sent one value and be scored on another. The fast path sees
a repeat for the price of counting the body's colons (every accepted record has exactly one key
per feature and numbers as values, the envelope one key): ~1 µs for one record, ~13 µs for 100
(numpy above a few KB; docs/performance.md). The slow path finds the key and names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import numpy as np
from pydantic import ValidationError

from serve.errors import InvalidInputError
from serve.schemas import FLOAT_LIMIT, INT_LIMIT, INT_TYPES, Column, build_request_model

if TYPE_CHECKING:
    from ml.contract import ModelContract, Violations

# The pydantic fields allow |int| <= INT_LIMIT; here floats carry the integers, and above 2**53
# they round onto neighbours, so the last representable-for-sure value is the fast path's bound.

MAX_ERRORS = 20  # errors listed in a 422; `count` says how many there were
MAX_DEPTH = 8  # a valid body nests 3 deep: {"records": [{...}]}
_CLIP = 80  # characters of a field name or message echoed back

_STRUCTURE = b"[]{},"
_DROP = bytes(c for c in range(256) if c not in _STRUCTURE)
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


@dataclass(frozen=True)
class ParsedRequest:
    """A valid body: its records (for the prediction log) and the matrix to score."""

    records: list[Any]  # dicts, or msgspec structs with the same fields
    matrix: np.ndarray  # float32, one row per record, columns in signature order
    # The records array exactly as received, when it is one line of JSON: the prediction log
    # embeds it instead of encoding 23 floats per record again (docs/performance.md).
    records_json: bytes | None = None


class RequestParser:
    """Parses /predict bodies for one model's signature and contract."""

    def __init__(
        self, columns: tuple[Column, ...], max_batch: int, contract: ModelContract | None = None
    ) -> None:
        self.names = tuple(c.name for c in columns)
        self.max_batch = max_batch
        if contract is not None and contract.names != self.names:
            contract = contract.reordered(self.names)
        self.contract = contract
        self.request_model = build_request_model(columns, max_batch, contract)
        self._fast = _fast_decoder(columns, max_batch, contract)
        # The fast path's bounds are the whole contract unless it has gaps or optional features.
        self._fast_is_contract = contract is None or all(
            f.required and (f.codes is None or f.contiguous_codes) for f in contract.features
        )

    def parse(self, body: bytes) -> ParsedRequest:
        """The parsed body, in contract; InvalidInputError naming each bad field otherwise."""
        parsed = self.parse_fast(body)
        if parsed is not None and self._fast_is_contract:
            return parsed
        if parsed is None:
            parsed = self._parse_slow(body)
        if self.contract is not None:
            violations = self.contract.check_matrix(parsed.matrix)
            if violations:
                raise contract_error(violations)
        return parsed

    def parse_records(self, records: list[dict[str, Any]]) -> ParsedRequest:
        """Records already decoded (the model's input example at load)."""
        return self.parse(msgspec.json.encode({"records": records}))

    def parse_fast(self, body: bytes) -> ParsedRequest | None:
        """The parsed body when it is plainly valid (types and contract bounds), else None (the
        model and the contract check decide and explain)."""
        if self._fast is None:
            return None
        envelope, records_decoder = self._fast
        try:
            # Two passes: the first only delimits the records array (cheap, in C), so the
            # log gets exactly the text that was validated.
            raw = envelope.decode(body).records
            records = records_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if _colons(body) != len(records) * len(self.names) + 1:
            return None  # a repeated key (in a record or the envelope): the slow path names it
        text = bytes(raw)
        values = chain.from_iterable(map(msgspec.structs.astuple, records))
        matrix = np.fromiter(values, dtype=np.float64, count=len(records) * len(self.names))
        return ParsedRequest(
            records=records,
            matrix=matrix.reshape(len(records), -1).astype(np.float32),
            records_json=None if b"\n" in text or b"\r" in text else text,
        )

    def _parse_slow(self, body: bytes) -> ParsedRequest:
        check_structure(body, self.max_batch, len(self.names))
        check_duplicate_keys(body)
        try:
            parsed = self.request_model.model_validate_json(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        records = [dict(r.__dict__) for r in parsed.records]  # type: ignore[attr-defined]
        rows = [[r[name] for name in self.names] for r in records]
        return ParsedRequest(records=records, matrix=np.array(rows, dtype=np.float32))


_NUMPY_COUNT_FROM = 4096  # bytes.count scans ~1 byte/ns; numpy's vectorised compare wins above


def _colons(body: bytes) -> int:
    if len(body) < _NUMPY_COUNT_FROM:
        return body.count(b":")
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == ord(":")))


def check_structure(body: bytes, max_batch: int, fields: int) -> None:
    """Refuse, before parsing, a body nested deeper than MAX_DEPTH or holding far more objects
    or values than `max_batch` records of `fields` numbers: work and error lists stay bounded.

    Brackets and commas inside strings count too: only field names are strings in a valid
    body, and no field name holds one, so a valid body is never refused.
    """
    marks = body.translate(None, _DROP)
    # Twice what fits, so that a batch a little too big still gets the model's precise error.
    objects, most_objects = marks.count(b"{"), 2 * (max_batch + 1)
    values, most_values = marks.count(b",") + 1, 2 * (max_batch * (fields + 1) + 1)
    if objects > most_objects or values > most_values:
        problem = f"{objects:,} objects" if objects > most_objects else f"{values:,} values"
        raise _structure_error(
            f"body: {problem}; a request holds at most {max_batch} records of {fields} numbers"
        )
    if marks:
        depth = int(np.cumsum(_STEP[np.frombuffer(marks, dtype=np.uint8)], dtype=np.int32).max())
        if depth > MAX_DEPTH:
            raise _structure_error(
                f"body: nested {depth} levels deep; a request is "
                '{"records": [{"FIELD": number, ...}, ...]} (3 levels)'
            )


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the keys it was given more than once."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        found.repeated = tuple(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return found


def check_duplicate_keys(body: bytes) -> None:
    """Refuse a body that gives a key twice, naming it (`records.3.AGE`); a body that is not
    JSON is left to the model, which says so."""
    try:
        top = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return
    where: tuple[int | str, ...] | None = None
    if isinstance(top, _Object) and top.repeated:
        where = (top.repeated[0],)
    elif isinstance(top, dict) and isinstance(top.get("records"), list):
        for i, record in enumerate(top["records"]):
            if isinstance(record, _Object) and record.repeated:
                where = ("records", i, record.repeated[0])
                break
    if where is None:
        return
    key = _clip(str(where[-1]))
    entry: dict[str, object] = {
        "field": _field(where),
        "loc": ["body", *where],
        "msg": f"key {key!r} is given more than once; give each field once",
        "type": "duplicate_key",
    }
    raise InvalidInputError(f"{entry['field']}: {entry['msg']}", [entry], 1)


def _structure_error(message: str) -> InvalidInputError:
    entry: dict[str, object] = {
        "field": "body",
        "loc": ["body"],
        "msg": message.removeprefix("body: "),
        "type": "structure",
    }
    return InvalidInputError(message, [entry], 1)


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _field(loc: tuple[int | str, ...]) -> str:
    return _clip(".".join(str(p) for p in loc)) or "body"


def validation_error(exc: ValidationError) -> InvalidInputError:
    """pydantic errors → a 422 whose first MAX_ERRORS entries name a dotted field
    (records.0.AGE), with the count of all of them. Shallow errors first: a wrong envelope
    says more than the 23 fields it made missing."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    detail: list[dict[str, object]] = []
    for err in sorted(errors, key=lambda e: len(e["loc"])):
        if len(detail) == MAX_ERRORS:
            break
        detail.append(
            {
                "field": _field(err["loc"]),
                "loc": ["body", *(_clip(p) if isinstance(p, str) else p for p in err["loc"])],
                "msg": _clip(err["msg"]),
                "type": err["type"],
            }
        )
    return _invalid(detail, exc.error_count())


def contract_error(violations: Violations) -> InvalidInputError:
    """Contract violations → a 422 naming the record, the field, the value's problem, what is
    allowed and why, for the first MAX_ERRORS of them, with the count of all."""
    detail: list[dict[str, object]] = []
    for v in violations.first(MAX_ERRORS):
        value: float | int | None = v.value if np.isfinite(v.value) else None
        if value is not None and v.feature.dtype == "int" and value == int(value):
            value = int(value)
        detail.append(
            {
                "field": f"records.{v.row}.{v.feature.name}",
                "loc": ["body", "records", v.row, v.feature.name],
                "row": v.row,
                "msg": v.problem,
                "type": f"contract.{v.kind}",
                "value": value,
                "allowed": v.feature.allowed(),
                "reason": v.feature.reason,
            }
        )
    return _invalid(detail, violations.count)


def _invalid(detail: list[dict[str, object]], count: int) -> InvalidInputError:
    first = detail[0] if detail else {"field": "body", "msg": "invalid"}
    more = f" (and {count - 1} more)" if count > 1 else ""
    return InvalidInputError(f"{first['field']}: {first['msg']}{more}", detail, count)


def _fast_decoder(
    columns: tuple[Column, ...], max_batch: int, contract: ModelContract | None
) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]] | None:
    """msgspec decoders for `{"records": <raw>}` and for the records array, or None when a column
    type has no exact msgspec equivalent here (booleans: left to pydantic). Each field's bounds
    are its type's, narrowed to the contract's range or the span of its codes."""
    fields: list[tuple[str, Any]] = []
    for c in columns:
        if c.type == "boolean":
            return None
        integer = c.type in INT_TYPES
        low, high = (-(INT_LIMIT - 1), INT_LIMIT - 1) if integer else (-FLOAT_LIMIT, FLOAT_LIMIT)
        if contract is not None:
            feature = contract.feature(c.name)
            low, high = max(low, feature.low), min(high, feature.high)
        meta = (
            msgspec.Meta(ge=low, le=high, multiple_of=1)
            if integer
            else msgspec.Meta(ge=low, le=high)
        )
        fields.append((c.name, Annotated[float, meta]))
    try:
        record = msgspec.defstruct("FastRecord", fields, forbid_unknown_fields=True)
    except (TypeError, ValueError):  # a column name that cannot be a struct field
        return None
    records = Annotated[list[record], msgspec.Meta(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    envelope = msgspec.defstruct(
        "FastEnvelope", [("records", msgspec.Raw)], forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(envelope), msgspec.json.Decoder(records)
