"""One adapter per outside system; each is the only module that runs or imports its client.

- `git`: the git CLI (commits, branches, remotes, tree ids).
- `github`: GitHub's REST API (urllib) and the GitHub CLI `gh`.
- `actions`: the GitHub Actions runner (its environment, step outputs and job summary).
- `mlflow_admin`: MLflow's basic-auth admin API (users and permissions); the tracking and
  registry side is `ml.registry.Registry`.
- `mlflow_models`: MLflow's run log and model format (log a run and its model, load a model).
- `aws`: boto3 clients, one place per process (region, retries, endpoint from the environment).
- `ecs`: the ECS calls a deploy makes (services, task definitions, one-off tasks); what a
  rollout means is `ml.deploy.rollout`.
- `docker`: the docker engine (the SDK) and `docker compose` (the CLI).
- `dvc`: the `dvc` executable (its own environment) and DVC's files (`dvc.lock`, `.dvc/config`).
- `http_probe`: a deployed service's HTTP endpoints (the smoke test's GETs; its policy is
  `ml.deploy.smoke`).
- `webhook`: a Slack-compatible incoming webhook (notifications; what to send is `ml.notify`).

Adapters import the standard library at module level (the CLI's fast path imports them) and
their client library inside the functions that need it. tests/unit/test_layers.py keeps every
other module from importing those clients.
"""
