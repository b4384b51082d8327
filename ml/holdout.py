"""The holdout: the one stratified split that training, gates and later evaluations share."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ml.data import Snapshot, ingest
from ml.features import FEATURES, TARGET
from ml.train_config import TrainConfig
from ml.validation import validate


@dataclass(frozen=True)
class Holdout:
    """The stratified split every candidate and every later evaluation uses."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


def split(frame: pd.DataFrame, config: TrainConfig) -> Holdout:
    """Stratified holdout with the configured seed: the same data gives the same split."""
    x = frame[FEATURES]
    y = frame[TARGET].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, stratify=y, random_state=config.seed
    )
    return Holdout(x_train, x_test, y_train, y_test)


def load_dataset(source: str, sha256: str | None, config: TrainConfig) -> tuple[Holdout, Snapshot]:
    """Ingest, validate and split; raises before anything is written anywhere."""
    frame, snapshot = ingest(source, sha256)
    validate(frame)
    return split(frame, config), snapshot


@functools.lru_cache(maxsize=2)
def reviewed_holdout(source: str, sha256: str, seed: int, test_size: float) -> Holdout:
    """The reviewed data's split as training made it, read once per process and checksum: the
    canary and the fairness gate replay the same holdout for every verdict."""
    holdout, _ = load_dataset(source, sha256, TrainConfig(seed=seed, test_size=test_size))
    return holdout
