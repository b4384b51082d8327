"""A numpy walk of an XGBoost binary:logistic tree ensemble, for requests of a few records.

XGBoost's cost for one record is mostly fixed per call, even through its C API without per-call
setup (serve/xgboost_inplace.py). Laid out as complete binary trees of the ensemble's depth, every
tree is walked at once in `depth` vectorised steps, a fraction of that for one record. XGBoost's
own traversal wins from about a dozen records on, so `BoosterPredictor` uses this only for small
batches, and only after `compile_ensemble` has checked it against the booster. Figures:
docs/performance.md (`make bench-paths`).

Semantics copied from XGBoost's numerical split: `x < threshold` goes left, float32 on both sides.
Missing values are not modelled: callers send only finite rows here (the request schema refuses
NaN and infinity; the predictor routes anything else to the booster).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("serve")

# Deeper trees make the complete layout (2**depth nodes per tree) too large to be worth it.
MAX_DEPTH = 10
# Largest disagreement with the booster accepted at load (float32 sums in another order).
TOLERANCE = 1e-5
_LOGISTIC = {"binary:logistic", "reg:logistic"}


@dataclass(frozen=True)
class TreeEnsemble:
    """Trees as complete binary trees: node i has children 2i+1 and 2i+2, leaves at `depth`."""

    depth: int
    features: np.ndarray  # (trees * internal,) feature index per internal node
    thresholds: np.ndarray  # (trees * internal,) float32; +inf pads a leaf (always left)
    leaves: np.ndarray  # (trees * 2**depth,) float32 leaf values
    base_margin: float  # logit of the booster's base_score
    tree_offsets: np.ndarray  # (trees,) first internal node of each tree
    leaf_offsets: np.ndarray  # (trees,) subtract-internal offset of each tree's leaves

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a finite float32 matrix (rows by features, signature order)."""
        rows, width = x.shape
        flat = np.ascontiguousarray(x, dtype=np.float32).ravel()
        trees = self.tree_offsets.size
        # One record (the common request) in 1-D: the 2-D broadcasting costs more.
        row_starts: Any = 0 if rows == 1 else (np.arange(rows) * width)[:, None]
        node = np.zeros(trees if rows == 1 else (rows, trees), dtype=np.intp)
        for _ in range(self.depth):
            at = self.tree_offsets + node
            right = flat.take(row_starts + self.features.take(at)) >= self.thresholds.take(at)
            node = 2 * node + 1 + right
        leaf = self.leaves.take(self.leaf_offsets + node)
        margin = leaf.sum(axis=-1, dtype=np.float64).reshape(rows)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-(margin + self.base_margin)))
        return result


def _unsupported(model: dict[str, Any]) -> str | None:
    """Why this booster cannot be walked here, or None."""
    learner = model["learner"]
    objective = learner["objective"]["name"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        return f"booster {booster.get('name')!r}"
    if objective not in _LOGISTIC:
        return f"objective {objective!r}"
    if int(learner["learner_model_param"].get("num_target", "1")) != 1:
        return "more than one target"
    for tree in booster["model"]["trees"]:
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            return "categorical splits"
    return None


def _depth(left: list[int], right: list[int]) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, level = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, level)
        else:
            stack += [(left[node], level + 1), (right[node], level + 1)]
    return deepest


def _layout(trees: list[dict[str, Any]], depth: int) -> tuple[np.ndarray, ...]:
    internal, width = 2**depth - 1, 2**depth
    features = np.zeros((len(trees), internal), dtype=np.intp)
    thresholds = np.full((len(trees), internal), np.inf, dtype=np.float32)
    leaves = np.zeros((len(trees), width), dtype=np.float32)
    for t, tree in enumerate(trees):
        left, right = tree["left_children"], tree["right_children"]
        split, value = tree["split_indices"], tree["split_conditions"]
        stack = [(0, 0, 0)]  # (node in the tree, position in the complete tree, level)
        while stack:
            node, pos, level = stack.pop()
            if left[node] != -1:
                features[t, pos], thresholds[t, pos] = split[node], value[node]
                stack += [
                    (left[node], 2 * pos + 1, level + 1),
                    (right[node], 2 * pos + 2, level + 1),
                ]
                continue
            # A leaf above the last level: the padding below it always goes left (threshold
            # +inf), so its value sits at the leftmost complete-tree leaf under it.
            for _ in range(depth - level):
                pos = 2 * pos + 1
            leaves[t, pos - internal] = value[node]
    return features.ravel(), thresholds.ravel(), leaves.ravel()


def _probe_rows(features: np.ndarray, thresholds: np.ndarray, width: int) -> np.ndarray:
    """Rows whose values sit on, just below and just above real thresholds (the ties)."""
    rng = np.random.default_rng(0)
    real = np.isfinite(thresholds)
    cuts = [thresholds[real & (features == f)] for f in range(width)]
    rows = np.zeros((96, width), dtype=np.float32)
    for f, values in enumerate(cuts):
        if values.size:
            picked = rng.choice(values, size=96)
            away = np.where(rng.random(96) < 0.5, -np.inf, np.inf).astype(np.float32)
            rows[:, f] = np.nextafter(picked, away)
            rows[::3, f] = picked[::3]  # exact ties go right, as in XGBoost
    return rows


def compile_ensemble(booster: Any) -> TreeEnsemble | None:
    """The ensemble of `booster` (xgboost.Booster), or None when it is not walkable here or
    disagrees with the booster on probe rows."""
    model = json.loads(booster.save_raw(raw_format="json"))
    reason = _unsupported(model)
    trees: list[dict[str, Any]] = []
    depth = 0
    if reason is None:
        trees = model["learner"]["gradient_booster"]["model"]["trees"]
        depth = max((_depth(t["left_children"], t["right_children"]) for t in trees), default=0)
        if not trees:
            reason = "no trees"
        elif depth > MAX_DEPTH:
            reason = f"depth {depth} > {MAX_DEPTH}"
    if reason is not None:
        log.info("small-batch tree walk off: %s; every request uses the booster", reason)
        return None
    base_score = float(str(model["learner"]["learner_model_param"]["base_score"]).strip("[]"))
    if not 0.0 < base_score < 1.0:
        log.info("small-batch tree walk off: base_score %s", base_score)
        return None
    features, thresholds, leaves = _layout(trees, depth)
    count = len(trees)
    ensemble = TreeEnsemble(
        depth=depth,
        features=features,
        thresholds=thresholds,
        leaves=leaves,
        base_margin=math.log(base_score / (1.0 - base_score)),
        tree_offsets=np.arange(count, dtype=np.intp) * (2**depth - 1),
        leaf_offsets=np.arange(count, dtype=np.intp) * 2**depth - (2**depth - 1),
    )
    width = int(model["learner"]["learner_model_param"]["num_feature"])
    probe = _probe_rows(features, thresholds, width)
    expected = np.asarray(booster.inplace_predict(probe, validate_features=False), dtype=np.float64)
    worst = float(np.max(np.abs(ensemble.predict(probe) - expected)))
    if not worst <= TOLERANCE:
        log.warning("small-batch tree walk off: differs from the booster by %.3g", worst)
        return None
    return ensemble
