"""The canary comparison: what switching production to a candidate would change, on real inputs.

Both versions score the same replay set; three figures say how far apart they are:

- the PSI of the candidate's scores against production's (`ml.monitoring.engine.score_psi`, the
  number the drift job reports for the served scores: one implementation);
- the approval rate of each at the serving threshold (a PD below it is approved, as serve
  decides) and their difference;
- the share of decisions that flip (approved by one, declined by the other).

Replay sets (`canary.replay` in config/gates.yaml):

- `holdout` (default): the reviewed holdout, rebuilt as `mlops train` and `mlops evaluate` build
  it: `ml.holdout.load_dataset` on ML_DATA_SOURCE (default the data/ snapshot, its sha256
  verified) with the reviewed config/train.yaml (seed, test_size). Not a version's logged
  reference sample: that is the training split, which the candidate was fitted on (its scores
  there are in-sample, production's are not), and each version has its own, so it is no common
  ground. The reviewed holdout is one set for both, reproducible from the checkout in CI (no
  artefact download), and no row of it trained either model when both trained on that data.
- `logs`: a sample of recent production inputs, read from serve's prediction log (a file, a
  folder or an s3:// prefix) by `ml.monitoring.logs.read_predictions`, optionally only the last
  `window` of it: what the service is asked today.

Rows either version's contract refuses are left out and counted (they would never be scored).
`score_pair` is the one scoring of a replay: the comparison here and the fairness figures on the
replay (ml/governance/canary_fairness.py) both take it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from ml.batch import ScoringModel
    from ml.promotions.gates.config import CanaryGates


@dataclass(frozen=True)
class Replay:
    """The inputs both versions score: feature columns by name, and where they come from."""

    frame: pd.DataFrame
    source: str  # "holdout" or "logs"
    description: str
    labels: np.ndarray | None = None  # observed defaults, row for row (the holdout has them)


@dataclass(frozen=True)
class Figures:
    """What the comparison found; rates and shares are fractions (0.0123 = 1.23 %)."""

    candidate: int
    production: int
    source: str
    replay: str
    rows: int  # rows both versions scored
    excluded: int  # rows left out: out of one version's contract
    threshold: float
    threshold_from: str
    score_psi: float
    approval_candidate: float
    approval_production: float
    flips: int

    @property
    def approval_delta(self) -> float:
        """Candidate's approval rate minus production's."""
        return self.approval_candidate - self.approval_production

    @property
    def flip_share(self) -> float:
        """Share of the scored rows whose decision differs between the two."""
        return self.flips / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, derived figures included."""
        return {
            **asdict(self),
            "approval_delta": self.approval_delta,
            "flip_share": self.flip_share,
        }


def serve_threshold() -> float:
    """The threshold serve declines at when SERVE_THRESHOLD is not set (its settings' default)."""
    from serve.settings import ServeSettings

    return float(ServeSettings.model_fields["threshold"].default)


def threshold_of(config: CanaryGates) -> tuple[float, str]:
    """The reviewed threshold and where it comes from: the gates file, else serve's default."""
    if config.threshold is not None:
        return config.threshold, "gates file"
    return serve_threshold(), "serve's SERVE_THRESHOLD default"


def holdout_replay() -> Replay:
    """The reviewed holdout (ML_DATA_SOURCE, ML_DATA_SHA256, ML_TRAIN_CONFIG), as training
    built it. Raises ConfigError without a checksum: an unverified file is not a reviewed set."""
    from ml.settings import MLSettings
    from ml.train_config import load_train_config

    settings = MLSettings()
    if not settings.data_sha256:
        raise ConfigError(
            "the canary's holdout needs ML_DATA_SHA256 (the checksum training verifies): "
            "set it, or use `replay: logs`"
        )
    config = load_train_config(settings.train_config)
    from ml.holdout import reviewed_holdout

    split = reviewed_holdout(
        settings.data_source, settings.data_sha256, config.seed, config.test_size
    )
    return Replay(
        frame=split.x_test,
        labels=np.asarray(split.y_test),
        source="holdout",
        description=(
            f"holdout of {settings.data_source} (sha256 {settings.data_sha256[:12]}; "
            f"{settings.train_config}: seed {config.seed}, test_size {config.test_size})"
        ),
    )


def logs_replay(location: str, window: str | None, max_rows: int, seed: int) -> Replay:
    """A deterministic sample of at most `max_rows` logged records (of the last `window`)."""
    from ml.monitoring.logs import Window, parse_duration, read_predictions

    since = None if window is None else time.time() - parse_duration(window)
    frame, stats = read_predictions(location, Window(start=since))
    versions = ", ".join(f"v{v}: {n:,}" for v, n in sorted(stats.versions.items()))
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    scope = f"last {window}" if window else "all"
    return Replay(
        frame=frame,
        source="logs",
        description=(
            f"{len(frame):,} of {stats.records:,} logged records ({scope}) in {location} "
            f"(served by {versions})"
        ),
    )


def replay_for(config: CanaryGates) -> Replay:
    """The replay set `config` names, at most `max_rows` rows (sampled with `seed`)."""
    if config.replay == "logs":
        assert config.logs is not None  # CanaryGates refuses `replay: logs` without `logs`
        return logs_replay(config.logs, config.window, config.max_rows, config.seed)
    replay = holdout_replay()
    if len(replay.frame) > config.max_rows:
        sample = replay.frame.sample(n=config.max_rows, random_state=config.seed).sort_index()
        labels = replay.labels
        if labels is not None:
            labels = labels[replay.frame.index.get_indexer(sample.index)]
        replay = Replay(
            sample, replay.source, f"{config.max_rows:,} rows of the {replay.description}", labels
        )
    return replay


def _matrix(model: ScoringModel, frame: pd.DataFrame) -> np.ndarray:
    """The frame's columns in the model's order, float32 as serve scores them."""
    from ml.errors import ContractError

    try:
        return model.contract.matrix_from(frame, dtype=np.float32)
    except ContractError as exc:
        raise DataError(f"the replay set cannot feed v{model.version}: {exc}") from None


@dataclass(frozen=True)
class Scored:
    """Both versions' scores on the replay rows in both contracts (`valid`, per replay row)."""

    valid: np.ndarray
    candidate: np.ndarray
    production: np.ndarray


def score_pair(candidate: ScoringModel, production: ScoringModel, replay: Replay) -> Scored:
    """Score `replay` with both versions, on the rows both contracts accept.

    Raises:
        DataError: the replay set lacks a column one version needs, or no row is in both
            versions' contracts.
    """
    mine, theirs = _matrix(candidate, replay.frame), _matrix(production, replay.frame)
    valid = (
        ~candidate.contract.check_matrix(mine).rows & ~production.contract.check_matrix(theirs).rows
    )
    if not valid.any():
        raise DataError(f"no row of the replay set ({replay.description}) is in both contracts")
    return Scored(valid, candidate.score(mine[valid]), production.score(theirs[valid]))


def compare(
    candidate: ScoringModel,
    production: ScoringModel,
    replay: Replay,
    threshold: float,
    threshold_from: str,
) -> Figures:
    """Score `replay` with both versions and compare their scores and decisions.

    Raises:
        DataError: the replay set lacks a column one version needs, or no row is in both
            versions' contracts.
    """
    from ml.monitoring.engine import score_psi

    scored = score_pair(candidate, production, replay)
    valid, new, old = scored.valid, scored.candidate, scored.production
    rows = int(valid.sum())
    approve_new, approve_old = new < threshold, old < threshold
    return Figures(
        candidate=candidate.version,
        production=production.version,
        source=replay.source,
        replay=replay.description,
        rows=rows,
        excluded=len(valid) - rows,
        threshold=threshold,
        threshold_from=threshold_from,
        score_psi=score_psi(old, new),
        approval_candidate=float(approve_new.mean()),
        approval_production=float(approve_old.mean()),
        flips=int(np.count_nonzero(approve_new != approve_old)),
    )


Outcome = tuple[str, bool, str, dict[str, Any]]


def outcomes(figures: Figures, config: CanaryGates) -> list[Outcome]:
    """One gate result per bound, each naming its figure and bound and carrying all figures."""
    f = figures
    shown = {
        **f.as_dict(),
        "max_score_psi": config.max_score_psi,
        "max_approval_delta": config.max_approval_delta,
        "max_flip_share": config.max_flip_share,
    }
    hint = " (hint: if the change is intended, widen the bound in config/gates.yaml by PR)"
    psi_ok = f.score_psi <= config.max_score_psi
    delta_ok = abs(f.approval_delta) <= config.max_approval_delta
    flips_ok = f.flip_share <= config.max_flip_share
    excluded = f", {f.excluded:,} out of contract left out" if f.excluded else ""
    return [
        (
            "canary:score_psi",
            psi_ok,
            f"score PSI {f.score_psi:.4f} (max {config.max_score_psi}): v{f.candidate} against "
            f"production v{f.production} on the {f.replay}, {f.rows:,} rows{excluded}"
            + ("" if psi_ok else hint),
            shown,
        ),
        (
            "canary:approval_delta",
            delta_ok,
            f"approval rate at PD < {f.threshold:g} ({f.threshold_from}): "
            f"v{f.candidate} {f.approval_candidate:.2%}, production v{f.production} "
            f"{f.approval_production:.2%}, delta {f.approval_delta * 100:+.2f} pp "
            f"(max ±{config.max_approval_delta * 100:.2f} pp)" + ("" if delta_ok else hint),
            shown,
        ),
        (
            "canary:flip_share",
            flips_ok,
            f"{f.flip_share:.2%} of decisions flip ({f.flips:,} of {f.rows:,}; "
            f"max {config.max_flip_share:.2%})" + ("" if flips_ok else hint),
            shown,
        ),
    ]
