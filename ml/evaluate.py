"""Holdout evaluation: the metrics gates read, the plots reviewers look at, and a model card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display on CI runners or in containers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from ml.errors import RegistryError

if TYPE_CHECKING:
    from ml.registry import Registry

DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Evaluation:
    """Holdout metrics of one candidate; names match the MLflow metric keys gates refer to."""

    roc_auc: float
    pr_auc: float
    ks: float
    brier: float
    log_loss: float
    default_rate: float
    rows: int

    def as_metrics(self) -> dict[str, float]:
        """Metrics to log to MLflow."""
        return {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "ks": self.ks,
            "brier": self.brier,
            "log_loss": self.log_loss,
            "holdout_default_rate": self.default_rate,
            "holdout_rows": float(self.rows),
        }


def ks_statistic(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the widest gap between the score CDFs of defaulters and payers."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.max(tpr - fpr))


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> Evaluation:
    """Compute the holdout metrics from labels and predicted probabilities of default."""
    return Evaluation(
        roc_auc=float(roc_auc_score(y_true, scores)),
        pr_auc=float(average_precision_score(y_true, scores)),
        ks=ks_statistic(y_true, scores),
        brier=float(brier_score_loss(y_true, scores)),
        log_loss=float(log_loss(y_true, scores, labels=[0, 1])),
        default_rate=float(np.mean(y_true)),
        rows=len(y_true),
    )


def write_plots(y_true: np.ndarray, scores: np.ndarray, out_dir: Path) -> list[Path]:
    """ROC, precision-recall, calibration and confusion-matrix plots as PNG files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y_true, scores)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y_true, scores):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC")
    ax.legend(loc="lower right")
    paths.append(_save(fig, out_dir / "roc.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    precision, recall, _ = precision_recall_curve(y_true, scores)
    ax.plot(recall, precision, label=f"AP {average_precision_score(y_true, scores):.3f}")
    ax.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall")
    ax.legend(loc="upper right")
    paths.append(_save(fig, out_dir / "pr.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    observed, predicted = calibration_curve(y_true, scores, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="Predicted PD", ylabel="Observed default rate", title="Calibration")
    ax.legend(loc="upper left")
    paths.append(_save(fig, out_dir / "calibration.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    matrix = confusion_matrix(y_true, (scores >= DECISION_THRESHOLD).astype(int), labels=[0, 1])
    ConfusionMatrixDisplay(matrix, display_labels=["pays", "defaults"]).plot(ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix at {DECISION_THRESHOLD}")
    paths.append(_save(fig, out_dir / "confusion_matrix.png"))
    return paths


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def model_card(
    *,
    model_name: str,
    kind: str,
    evaluation: Evaluation,
    params: dict[str, object],
    data_sha256: str,
    data_rows: int,
    git_sha: str,
) -> str:
    """A short markdown model card logged next to the model."""
    param_lines = "\n".join(f"| `{key}` | `{value}` |" for key, value in sorted(params.items()))
    return f"""# Model card: {model_name} ({kind})

**Use**: probability that a credit-card client defaults on next month's payment. A decision aid
for credit officers, not an automated decision. Protected attributes, fairness figures and
reason codes: the Governance section below (config/governance.yaml, docs/governance.md).

**Data**: UCI "default of credit card clients" (Taiwan, 2005), {data_rows} rows,
sha256 `{data_sha256}`. Stratified holdout of {evaluation.rows} rows,
default rate {evaluation.default_rate:.1%}.

**Code**: git `{git_sha}`.

## Holdout metrics
| metric | value |
|---|---|
| ROC-AUC | {evaluation.roc_auc:.4f} |
| PR-AUC | {evaluation.pr_auc:.4f} |
| KS | {evaluation.ks:.4f} |
| Brier score | {evaluation.brier:.4f} |
| log loss | {evaluation.log_loss:.4f} |

## Hyperparameters
| name | value |
|---|---|
{param_lines}

## Limits
Trained on 2005 data from one Taiwanese issuer: not calibrated for other markets or periods.
Promotion to production is decided by `promotions.yaml` and the gates, not by this card.
"""


def _score_model_dir(local: Path, label: str, x: pd.DataFrame) -> np.ndarray:
    """Probabilities of default from a downloaded model directory, in the flavor it was logged.

    The flavor comes from the directory's own MLmodel file: the same loading for a registered
    version and for a run that is not registered yet.
    """
    from ml.adapters.mlflow_models import load_classifier
    from ml.features import FEATURES

    try:
        model = load_classifier(local)
    except Exception as exc:  # a broken artifact is the registry's problem, named
        raise RegistryError(f"cannot load {label}: {exc}") from exc
    return model.predict_proba(x[FEATURES])[:, 1]


def evaluate_version(
    registry: Registry, model_name: str, version: int, x: pd.DataFrame, y: np.ndarray
) -> Evaluation:
    """Score a registered version on labelled data with the flavor it was logged in."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        local = registry.download_version(model_name, version, Path(tmp))
        scores = _score_model_dir(local, f"{model_name} v{version}", x)
    return evaluate(y, scores)


def evaluate_model_uri(
    registry: Registry, model_uri: str, x: pd.DataFrame, y: np.ndarray
) -> Evaluation:
    """Score a logged model (`models:/m-...`, e.g. a run's, before registration) on labelled data.

    The evaluate step of an orchestrated retrain: it loads the artifact the registry holds, so
    a model that cannot be loaded back fails here, before it becomes a version.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        local = registry.download_model(model_uri, Path(tmp))
        scores = _score_model_dir(local, model_uri, x)
    return evaluate(y, scores)


# The metrics a run's logged model must reproduce on its own holdout, and how closely.
REPRODUCED = ("roc_auc", "ks", "brier")
REPRODUCTION_TOLERANCE = 1e-6


def reproduction_mismatch(
    logged: Mapping[str, float], scored: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """{metric: (logged, scored)} for each REPRODUCED metric the run logged that scoring its
    model again on the same holdout does not reproduce: a model artefact that does not is not
    the model that was evaluated (`mlops evaluate --run` fails the step, exit 5)."""
    return {
        name: (logged[name], scored[name])
        for name in REPRODUCED
        if name in logged and abs(logged[name] - scored[name]) > REPRODUCTION_TOLERANCE
    }
