"""Request and response models. The request model is built from the model signature at load time.

Body shape (one shape for one record and for many, so clients never branch):

    {"records": [{"LIMIT_BAL": 20000.0, "SEX": 2, ...}, ...]}     1 <= len(records) <= MAX_BATCH

Every field is required; unknown fields, wrong types (strings, booleans, 1.5 for an integer
column) and NaN/Infinity are refused with a 422 that names the field. 35.0 counts as the
integer 35, as in JSON Schema. The model contract's codes and ranges show in the schema
(`enum`, `minimum`, `maximum`, and the reason as the description); they are enforced on the
parsed matrix (serve.request_parser), where one vectorised check covers every record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, create_model

if TYPE_CHECKING:
    from ml.contract import Feature, ModelContract

# float32 is what the booster sees: keep every value finite after the cast.
FLOAT_LIMIT = 1e38
INT_LIMIT = 2**53

INT_TYPES = frozenset({"long", "integer"})
_FLOAT_TYPES = frozenset({"double", "float"})

StrictFiniteFloat = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=-FLOAT_LIMIT, le=FLOAT_LIMIT)
]


def _integral_float_to_int(value: Any) -> Any:
    """JSON Schema's `integer` includes 35.0: accept integral floats, nothing else (no "35")."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


BoundedInt = Annotated[
    StrictInt, Field(ge=-INT_LIMIT, le=INT_LIMIT), BeforeValidator(_integral_float_to_int)
]


class Column(BaseModel):
    """One input column of the signature."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str


def column_annotation(column: Column) -> Any:
    """The pydantic type of one signature column; unknown MLflow types are refused at load."""
    if column.type in INT_TYPES:
        return BoundedInt
    if column.type in _FLOAT_TYPES:
        return StrictFiniteFloat
    if column.type == "boolean":
        return Annotated[bool, Field(strict=True)]
    raise ValueError(f"column {column.name!r} has MLflow type {column.type!r}; not servable")


def contract_schema(feature: Feature) -> dict[str, Any]:
    """The JSON Schema keywords of a contract feature: what the OpenAPI document promises."""
    extra: dict[str, Any] = {"description": f"{feature.allowed()}. {feature.reason}"}
    if feature.codes is not None:
        extra["enum"] = sorted(feature.codes)
    else:
        if feature.minimum is not None:
            extra["minimum"] = feature.minimum
        if feature.maximum is not None:
            extra["maximum"] = feature.maximum
    return extra


def build_request_model(
    columns: tuple[Column, ...], max_batch: int, contract: ModelContract | None = None
) -> type[BaseModel]:
    """Build `PredictRequest` (a list of `Record`) for these columns, in signature order; with
    a contract, its bounds annotate the schema (the parser enforces them)."""
    extras = {f.name: contract_schema(f) for f in contract.features} if contract else {}
    fields: dict[str, Any] = {
        c.name: (
            column_annotation(c),
            Field(..., title=c.name, json_schema_extra=extras.get(c.name)),
        )
        for c in columns
    }
    record = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )
    request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(
            Annotated[list[record], Field(min_length=1, max_length=max_batch)],  # type: ignore[valid-type]
            ...,
        ),
    )
    return request


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str


class ReasonCode(BaseModel):
    """One reason for a score (an adverse-action reason for a decline)."""

    feature: str = Field(description="The input feature, e.g. PAY_0.")
    text: str = Field(description="Its reviewed text (config/governance.yaml).")
    contribution: float = Field(description="Its exact contribution to the log-odds (> 0).")


class Prediction(BaseModel):
    """The score of one record."""

    probability: float = Field(description="Probability of default, 0..1.")
    decision: Literal["approve", "decline"] = Field(
        description="decline if probability >= threshold."
    )
    reasons: list[ReasonCode] | None = Field(
        default=None,
        description="Only with `?reasons=true`, and only for a decline: up to 4 reason codes, "
        "the features that raised this record's probability of default most (the booster's "
        "own per-feature contributions), largest first, with their reviewed texts. Never a "
        "protected attribute.",
    )


class PredictResponse(BaseModel):
    """Predictions in the order of the records."""

    model: ModelRef
    threshold: float
    predictions: list[Prediction]


class ErrorBody(BaseModel):
    """Every error response: a code, a one-line message, and for invalid input the first
    errors (each naming its field, and its record in a batch) with the count of all of them."""

    error: str
    message: str | None = None
    detail: Any = None
    count: int | None = None


class Health(BaseModel):
    """Liveness: the process runs; `degraded` says why it may be stale."""

    status: Literal["ok", "degraded"]
    reason: str | None = Field(default=None, description="Why degraded, in one line.")
    model_version: str | None = Field(default=None, description="The version being served.")
    source: str | None = None
    alias_version: str | None = Field(
        default=None, description="The version the alias points at, when the registry answered."
    )
    feature_store: Literal["ok", "unavailable"] | None = Field(
        default=None, description="The online feature store (by-id), when configured."
    )
    feature_snapshot: int | None = Field(
        default=None, description="The feature snapshot /predict/by-id reads."
    )


class Ready(BaseModel):
    """Readiness: a model is loaded."""

    ready: bool
    model_version: str | None = None
