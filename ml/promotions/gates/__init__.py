"""Promotion gates: the checks a version must pass before an alias moves to it.

One module per concept:

- `config`: `config/gates.yaml` (`GatesFile`, `ModelGates`, `CanaryGates`, `load_gates`);
- `base`: what a gate is (`GateInput`, `Outcome`, `@gate`); `results`: `GateResult`, `Verdict`
  and the waivers;
- the gates: `integrity` (the version's own records, loadability), `metrics` (floors,
  ceilings, regression), `contract` (signature), `canary`, `soak`, and the governance gates in
  `ml.governance.gates`;
- `catalog`: which gates run, in order (the one list to edit);
- `verdicts`: `check_version`, `check_run`, `evaluate`, `gated_diff`; `cache`: `VerdictCache`.

This package's namespace holds what gates are written with (config, base, results and the
cache): importing it never imports a gate, so a gate module elsewhere (ml/governance/gates.py)
imports it without a circle, and the catalog imports the gates.
"""

from ml.promotions.gates.base import Check, GateInput, Outcome, gate, gate_name
from ml.promotions.gates.cache import VerdictCache, replay_key
from ml.promotions.gates.config import CanaryGates, GatesFile, ModelGates, load_gates
from ml.promotions.gates.results import (
    COMPARES_WITH_PRODUCTION,
    WAIVED_ON_ROLLBACK,
    GateResult,
    Verdict,
    waive,
)

__all__ = [
    "COMPARES_WITH_PRODUCTION",
    "WAIVED_ON_ROLLBACK",
    "CanaryGates",
    "Check",
    "GateInput",
    "GateResult",
    "GatesFile",
    "ModelGates",
    "Outcome",
    "Verdict",
    "VerdictCache",
    "gate",
    "gate_name",
    "load_gates",
    "replay_key",
    "waive",
]
