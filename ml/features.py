"""The feature contract and the model pipelines built on it.

One table says what every column is (type, allowed codes or range); validation, training and the
MLflow signature all read it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

ModelKind = Literal["xgboost", "logreg"]
MODEL_KINDS: tuple[ModelKind, ...] = ("xgboost", "logreg")

ID_COLUMN = "ID"
TARGET = "target"


@dataclass(frozen=True)
class Column:
    """One input column: its kind and the values it may take."""

    name: str
    kind: Literal["int", "float"]
    minimum: float | None = None
    maximum: float | None = None
    codes: frozenset[int] | None = None


_PAY_STATUS_CODES = frozenset(
    range(-2, 9)
)  # -2 no use, -1 paid duly, 0 revolving, 1..8 months late
PAY_STATUS = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
BILL_AMOUNTS = [f"BILL_AMT{i}" for i in range(1, 7)]
PAY_AMOUNTS = [f"PAY_AMT{i}" for i in range(1, 7)]
CATEGORICAL = ["SEX", "EDUCATION", "MARRIAGE"]

FEATURE_COLUMNS: tuple[Column, ...] = (
    Column("LIMIT_BAL", "float", minimum=0, maximum=10_000_000),
    Column("SEX", "int", codes=frozenset({1, 2})),
    # 0, 5 and 6 are undocumented but present in the source data (PROVENANCE.md).
    Column("EDUCATION", "int", codes=frozenset(range(0, 7))),
    Column("MARRIAGE", "int", codes=frozenset({0, 1, 2, 3})),
    Column("AGE", "int", minimum=18, maximum=100),
    *(Column(name, "int", codes=_PAY_STATUS_CODES) for name in PAY_STATUS),
    *(Column(name, "float", minimum=-10_000_000, maximum=10_000_000) for name in BILL_AMOUNTS),
    *(Column(name, "float", minimum=0, maximum=10_000_000) for name in PAY_AMOUNTS),
)
FEATURES: list[str] = [column.name for column in FEATURE_COLUMNS]
TARGET_COLUMN = Column(TARGET, "int", codes=frozenset({0, 1}))
ID = Column(ID_COLUMN, "int", minimum=0)
ALL_COLUMNS: tuple[Column, ...] = (ID, *FEATURE_COLUMNS, TARGET_COLUMN)


def build_pipeline(kind: ModelKind, params: dict[str, Any], seed: int) -> Pipeline:
    """Build the untrained pipeline for one candidate.

    XGBoost takes the raw columns (trees need no scaling or encoding), so its pipeline is the
    classifier alone and the fitted booster is the whole model: it is logged natively and served
    without scikit-learn or pickle. The logistic baseline one-hot encodes the codes and maps the
    heavy-tailed amounts through a normal quantile transform.
    """
    # Imported here so the CLI and the column table load without the training stack.
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, QuantileTransformer
    from xgboost import XGBClassifier

    if kind == "xgboost":
        classifier = XGBClassifier(
            objective="binary:logistic",
            eval_metric="auc",
            tree_method="hist",
            random_state=seed,
            n_jobs=2,
            **params,
        )
        return Pipeline([("model", classifier)])
    if kind == "logreg":
        numeric = [name for name in FEATURES if name not in CATEGORICAL]
        preprocess = ColumnTransformer(
            [
                ("codes", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                (
                    "numeric",
                    QuantileTransformer(output_distribution="normal", random_state=seed),
                    numeric,
                ),
            ]
        )
        return Pipeline(
            [("features", preprocess), ("model", LogisticRegression(random_state=seed, **params))]
        )
    raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
