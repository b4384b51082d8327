"""The promotions engine: `promotions.yaml` (desired state) → gates → reconciler → plan, apply,
status; plus history and rollback. One module per concept:

- `spec`: the desired-state file, parsed strictly; `desired_version(loaded, model, env)`.
- `records`: the tag schema, stage rules, apply/pending records and the lease (the public API
  other writers, e.g. deploys, use).
- `gates`: the checks a version passes before an alias moves to it.
- `reconcile`: observe → pure diff → actions; `plan`, `apply` and `status` consume them.
- `history`, `rollback`, `promotion_pr`: the git side.
- `versions`: every version with where and when it ran (`mlops versions`).
- `render`: free text (notes) shown as text in the terminal and the PR comment.

The CLI in `ml.cli.promote` only parses and prints.
"""

from ml.promotions.records import ENVIRONMENTS

__all__ = ["ENVIRONMENTS"]
