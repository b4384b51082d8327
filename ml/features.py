"""The credit-risk model contract (the one column table) and the model pipelines built on it.

`CONTRACT` says what every feature is (dtype, allowed codes or range, and why); training
validation, the MLflow signature check, serving, batch scoring and the gates all read it, or the
copy logged with a version (`contract.json`), so they cannot disagree. Sources of the bounds: the
UCI documentation of dataset 350 (Yeh & Lien 2009) and data/PROVENANCE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ml.contract import Feature, ModelContract

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

ModelKind = Literal["xgboost", "logreg"]
MODEL_KINDS: tuple[ModelKind, ...] = ("xgboost", "logreg")

ID_COLUMN = "ID"
TARGET = "target"

# Amounts are NT dollars. The data's largest credit line is 1,000,000; ten times that bounds every
# amount of a consumer card before a value is more likely a typing error (an extra digit) than a
# client, and the model has never seen anything near it.
_AMOUNT_LIMIT = 10_000_000
_MONTHS = ("September", "August", "July", "June", "May", "April")
PAY_STATUS = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
BILL_AMOUNTS = [f"BILL_AMT{i}" for i in range(1, 7)]
PAY_AMOUNTS = [f"PAY_AMT{i}" for i in range(1, 7)]
CATEGORICAL = ["SEX", "EDUCATION", "MARRIAGE"]

_PAY_STATUS_MEANINGS = {
    -2: "no consumption",
    -1: "paid duly",
    0: "revolving credit",
    **{m: "months late" for m in range(1, 9)},
    9: "nine or more months late",
}

CONTRACT = ModelContract(
    description=(
        "Credit-card clients, Taiwan 2005 (UCI dataset 350): 23 features of one client, amounts "
        "in NT dollars, repayment history April-September 2005."
    ),
    features=(
        Feature(
            "LIMIT_BAL",
            "float",
            minimum=0,
            maximum=_AMOUNT_LIMIT,
            reason="Credit granted, individual plus family credit (UCI X1): a credit line cannot "
            "be negative; the data spans 10,000..1,000,000, the ceiling is ten times that.",
        ),
        Feature(
            "SEX",
            "int",
            codes=(1, 2),
            meanings={1: "male", 2: "female"},
            reason="UCI X2 documents 1 = male, 2 = female; no other value occurs in the data.",
        ),
        Feature(
            "EDUCATION",
            "int",
            codes=(0, 1, 2, 3, 4, 5, 6),
            meanings={
                1: "graduate school",
                2: "university",
                3: "high school",
                4: "others",
                0: "undocumented",
                5: "undocumented",
                6: "undocumented",
            },
            reason="UCI X3 documents 1..4; 0, 5 and 6 occur in the data (345 of 30,000 rows) "
            "undocumented (the authors' notes count them as others), so they stay allowed.",
        ),
        Feature(
            "MARRIAGE",
            "int",
            codes=(0, 1, 2, 3),
            meanings={1: "married", 2: "single", 3: "others", 0: "undocumented"},
            reason="UCI X4 documents 1 = married, 2 = single, 3 = others; 0 occurs in the data "
            "(54 rows) undocumented, so it stays allowed.",
        ),
        Feature(
            "AGE",
            "int",
            minimum=18,
            maximum=100,
            reason="Years (UCI X5). A cardholder is an adult (18); the data spans 21..79, and "
            "past 100 a value is more likely a typing error than a client.",
        ),
        *(
            Feature(
                name,
                "int",
                codes=tuple(range(-2, 10)),
                meanings=_PAY_STATUS_MEANINGS,
                reason=f"Repayment status in {month} 2005 (UCI X{6 + i}): the documented scale "
                "is -1 = paid duly, 1..9 = months of delay (9 = nine or more); -2 and 0 occur in "
                "the data, described by the authors as no consumption and revolving credit.",
            )
            for i, (name, month) in enumerate(zip(PAY_STATUS, _MONTHS, strict=True))
        ),
        *(
            Feature(
                name,
                "float",
                minimum=-_AMOUNT_LIMIT,
                maximum=_AMOUNT_LIMIT,
                reason=f"Bill statement of {month} 2005 (UCI X{12 + i}). Negative means the "
                "client holds a credit balance (paid more than owed); the data spans "
                "-339,603..1,664,089.",
            )
            for i, (name, month) in enumerate(zip(BILL_AMOUNTS, _MONTHS, strict=True))
        ),
        *(
            Feature(
                name,
                "float",
                minimum=0,
                maximum=_AMOUNT_LIMIT,
                reason=f"Amount paid in {month} 2005 (UCI X{18 + i}): a payment cannot be "
                "negative; the data's largest is 1,684,259.",
            )
            for i, (name, month) in enumerate(zip(PAY_AMOUNTS, _MONTHS, strict=True))
        ),
    ),
)
FEATURE_COLUMNS: tuple[Feature, ...] = CONTRACT.features
FEATURES: list[str] = list(CONTRACT.names)
ID = Feature(ID_COLUMN, "int", minimum=0, reason="Row number of the client in the source data.")
TARGET_COLUMN = Feature(
    TARGET,
    "int",
    codes=(0, 1),
    meanings={0: "no default", 1: "default payment next month"},
    reason="UCI Y: default payment next month (1 = yes).",
)
# What a training file holds: the row id, the contract's features and the label.
TRAINING_COLUMNS = ModelContract((ID, *FEATURE_COLUMNS, TARGET_COLUMN))
ALL_COLUMNS: tuple[Feature, ...] = TRAINING_COLUMNS.features


def build_pipeline(
    kind: ModelKind, params: dict[str, Any], seed: int, inputs: Sequence[str] | None = None
) -> Pipeline:
    """Build the untrained pipeline for one candidate.

    `inputs` are the features it may use (default: all; see ml/governance/training.py): the
    logistic baseline drops the others in its column transformer.

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
        used = list(inputs) if inputs is not None else FEATURES
        numeric = [name for name in used if name not in CATEGORICAL]
        codes = [name for name in CATEGORICAL if name in used]
        preprocess = ColumnTransformer(
            [
                ("codes", OneHotEncoder(handle_unknown="ignore"), codes),
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
