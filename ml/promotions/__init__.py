"""The promotions engine: `promotions.yaml` (desired state) → gates → reconciler → plan, apply,
status; plus history and rollback. One module per concept:

- `spec`: the desired-state file, parsed strictly.
- `records`: the tag schema, stage rules, apply/pending records and the lease (the public API
  other writers, e.g. deploys, use).
- `gates`: the checks a version passes before an alias moves to it.
- `reconcile`: observe → pure diff → actions; `plan`, `apply` and `status` consume them.
- `history`, `rollback`, `promotion_pr`: the git side.

The CLI in `ml.cli.promote` only parses and prints.
"""

from ml.promotions.records import ENVIRONMENTS

__all__ = ["ENVIRONMENTS"]
