"""Credit-decision governance: protected attributes, reason codes, fairness gates, the release
report. Configured by the reviewed `config/governance.yaml` (docs/governance.md)."""
