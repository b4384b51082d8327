"""The promotions engine: `promotions.yaml` (desired state) → gates → plan → apply → status.

One module per concept; the CLI in `ml.cli.promote` only parses and prints.
"""

ENVIRONMENTS: tuple[str, ...] = ("staging", "production")
