"""XGBoost's per-path (Saabas) contributions for a few records, in numpy, without a DMatrix.

`Booster.predict(pred_contribs=True, approx_contribs=True)` needs a DMatrix, whose construction
and XGBoost's per-call setup cost more than the walk itself for one record (docs/performance.md,
"Reason codes"). The same arithmetic here, on every tree at once: each tree as a complete
binary tree of the ensemble's depth; a node's mean value is XGBoost's (its leaves' values
weighted by their hessian sums); walking a record down, each split credits its feature with the
change in mean value; the roots' means and the base margin make the bias. `compile_paths` checks
the result against the booster on probe rows and returns None on any difference, so the caller
falls back to XGBoost itself.

Semantics of the walk: `x < threshold` goes left (float32); finite inputs only (the caller sends
NaN rows to XGBoost, which knows each split's default direction).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_DEPTH = 10
TOLERANCE = 1e-4


@dataclass(frozen=True)
class PathContributions:
    """The ensemble laid out for walking: see the module docstring."""

    depth: int
    width: int  # features
    features: np.ndarray  # (trees, 2**depth - 1) feature of each internal node
    thresholds: np.ndarray  # (trees, 2**depth - 1) float32; +inf pads (always left)
    means: np.ndarray  # (trees, 2**(depth+1) - 1) float64 mean value of every position
    bias: float  # base margin + sum of the roots' means

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(rows, features + 1) contributions in log-odds; the last column is the bias."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows = len(x)
        trees = self.features.shape[0]
        out = np.zeros((rows, self.width + 1), dtype=np.float64)
        out[:, -1] = self.bias
        tree_index = np.arange(trees)
        for r in range(rows):
            node = np.zeros(trees, dtype=np.intp)
            row = x[r]
            for _ in range(self.depth):
                feature = self.features[tree_index, node]
                right = row[feature] >= self.thresholds[tree_index, node]
                child = 2 * node + 1 + right
                delta = self.means[tree_index, child] - self.means[tree_index, node]
                out[r, : self.width] += np.bincount(feature, weights=delta, minlength=self.width)
                node = child
        return out


def _mean_values(tree: dict[str, Any]) -> list[float]:
    """XGBoost's FillNodeMeanValues: a leaf's value, or the hessian-weighted mean of children."""
    left, right = tree["left_children"], tree["right_children"]
    hess, value = tree["sum_hessian"], tree["split_conditions"]
    means = [0.0] * len(left)

    def fill(node: int) -> float:
        if left[node] == -1:
            means[node] = float(value[node])
        else:
            a, b = fill(left[node]), fill(right[node])
            means[node] = (a * hess[left[node]] + b * hess[right[node]]) / hess[node]
        return means[node]

    fill(0)
    return means


def compile_paths(booster: Any) -> PathContributions | None:
    """The walk for `booster` (xgboost.Booster), or None when it is not a plain binary
    logistic gbtree of at most MAX_DEPTH, or disagrees with XGBoost on probe rows."""
    import xgboost as xgb

    model = json.loads(booster.save_raw(raw_format="json"))
    learner = model["learner"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree" or learner["objective"]["name"] != "binary:logistic":
        return None
    trees = gbm["model"]["trees"]
    if any(any(int(t) != 0 for t in tree.get("split_type", [])) for tree in trees):
        return None
    depths = []
    for tree in trees:
        deepest, stack = 0, [(0, 0)]
        while stack:
            node, level = stack.pop()
            if tree["left_children"][node] == -1:
                deepest = max(deepest, level)
            else:
                stack += [(tree["left_children"][node], level + 1)]
                stack += [(tree["right_children"][node], level + 1)]
        depths.append(deepest)
    depth = max(depths, default=0)
    if not trees or depth > MAX_DEPTH or depth == 0:
        return None
    width = int(learner["learner_model_param"]["num_feature"])
    internal, total = 2**depth - 1, 2 ** (depth + 1) - 1
    features = np.zeros((len(trees), internal), dtype=np.intp)
    thresholds = np.full((len(trees), internal), np.inf, dtype=np.float32)
    means = np.zeros((len(trees), total), dtype=np.float64)
    for t, tree in enumerate(trees):
        mean = _mean_values(tree)
        left, right = tree["left_children"], tree["right_children"]
        stack = [(0, 0)]  # (node in the tree, position in the complete tree)
        while stack:
            node, pos = stack.pop()
            means[t, pos] = mean[node]
            if left[node] != -1:
                features[t, pos] = tree["split_indices"][node]
                thresholds[t, pos] = tree["split_conditions"][node]
                stack += [(left[node], 2 * pos + 1), (right[node], 2 * pos + 2)]
            else:
                # Padding below a shallow leaf always goes left and keeps its mean: no credit.
                while 2 * pos + 1 < total:
                    pos = 2 * pos + 1
                    means[t, pos] = mean[node]
    base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
    base_margin = math.log(base_score / (1 - base_score))
    paths = PathContributions(
        depth, width, features, thresholds, means, base_margin + float(means[:, 0].sum())
    )
    probe = np.random.default_rng(0).normal(scale=1e4, size=(32, width)).astype(np.float32)
    expected = booster.predict(
        xgb.DMatrix(probe, nthread=1), pred_contribs=True, approx_contribs=True,
        validate_features=False,
    )  # fmt: skip
    if np.abs(paths(probe) - expected).max() > TOLERANCE:
        return None
    return paths
