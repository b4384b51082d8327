"""The Spark training backend: `xgboost.spark.SparkXGBClassifier` fits the booster on a cluster.

Only the fit moves to Spark. Everything a version is judged on stays the local trainer's
(`ml.train.train_candidate`): the same holdout, metrics, contract, reference sample, model card
and the same native booster logged with `mlflow.xgboost` (serving loads it unchanged). So the
gates apply to a Spark-trained version exactly as to a local one. `fit_xgboost` returns the
booster inside a scikit-learn `XGBClassifier`, the estimator the local backend fits, so the rest
of training cannot tell the two apart.

Protected columns are blinded before the data reaches Spark (`ml.governance.training.blind`):
they stay in the training frame with one constant value, so no tree can split on them, as in
the local backend.

`config/train.yaml` selects the backend (`backend: local | spark`) and the cluster (`spark:
{master, num_workers}`): `local[2]` in tests; on EMR Serverless the job's own session
(`master: ""` keeps whatever `spark-submit` configured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from xgboost import XGBClassifier

    from ml.train_config import SparkTraining

LABEL = "label"
# Parameters the local estimator takes that SparkXGBClassifier sets itself (threads per worker
# come from spark.task.cpus) or names differently.
_LOCAL_ONLY = {"n_jobs", "nthread"}


def spark_params(params: Mapping[str, Any], seed: int, num_workers: int) -> dict[str, Any]:
    """The local candidate's hyperparameters as SparkXGBClassifier takes them."""
    out = {k: v for k, v in params.items() if k not in _LOCAL_ONLY}
    return {
        "eval_metric": "auc",
        "tree_method": "hist",
        "random_state": seed,
        "num_workers": num_workers,
        "verbose": False,
        **out,
    }


def fit_xgboost(
    x: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    seed: int,
    spark: SparkTraining,
    features: Sequence[str] | None = None,
) -> XGBClassifier:
    """Fit the booster with SparkXGBClassifier; return it as a fitted scikit-learn estimator.

    `x` is the (already blinded) training frame; its columns, in order, are the booster's
    feature names, as the local fit records them.
    """
    from xgboost import XGBClassifier
    from xgboost.spark import SparkXGBClassifier

    from ml.spark.session import spark_session

    columns = list(features if features is not None else x.columns)
    frame = x[columns].astype("float64").assign(**{LABEL: y.astype("int64")})
    cluster = spark_session(spark.master, "credit-risk-train")
    data = cluster.createDataFrame(frame).repartition(spark.num_workers)
    estimator = SparkXGBClassifier(
        features_col=columns,
        label_col=LABEL,
        **spark_params(params, seed, spark.num_workers),
    )
    model = estimator.fit(data)
    booster = model.get_booster()
    # The local fit records the pandas dtypes ('int'/'float') per feature; record the same, so
    # serving and the contribution paths see one booster whichever backend made it.
    booster.feature_names = columns
    booster.feature_types = ["int" if x[c].dtype.kind in "iu" else "float" for c in columns]
    fitted = XGBClassifier(**{k: v for k, v in params.items() if k not in _LOCAL_ONLY})
    fitted.load_model(bytearray(booster.save_raw("ubj")))
    return fitted
