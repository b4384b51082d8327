"""Monitoring: data and prediction drift, the training-data gate, metrics for Prometheus.

`mlops monitor drift` compares what production scored (the serving prediction log) with the
reference sample logged with the version that scored it; `mlops data check` compares a new
training set with a reference the same way. Both use one engine (`ml.monitoring.engine`, Evidently
underneath) and one reviewed threshold file (`config/monitoring.yaml`).

Nothing here imports pandas or Evidently at module level: `mlops --help` stays fast.
"""
