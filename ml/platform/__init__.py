"""Adopting the repository: the list of GitHub configuration (`config`), the checks that read it
(`workflows`, `preflight`), the table in docs/adopting.md (`docs_table`) and `mlops bootstrap`
(`bootstrap/`, one module per step)."""
