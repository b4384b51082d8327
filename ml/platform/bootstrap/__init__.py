"""`mlops bootstrap`: from an empty AWS account and GitHub repository to a configured pipeline.

Four steps, each idempotent, in the order an adoption needs them (docs/adopting.md):

1. `state-bucket`  the terraform state bucket (boto3): versioning, default encryption, public
                   access block, TLS-only policy; refuses credentials of another account.
2. `codeowners`    replaces the team placeholders in .github/CODEOWNERS (commit it in a PR).
3. `github`        through `gh api`: default workflow token read-only, the OIDC subject template,
                   the environments with reviewers and a `main`-only deployment branch policy,
                   branch protection on main, and every variable and secret of
                   config/platform.yaml whose value comes from terraform or a person. First it
                   checks that every OIDC subject the roles trust (terraform outputs
                   role_subjects, aws_deploy_role_subjects) names this repository and an
                   environment the list creates, on a branch it allows.
4. `mlflow-users`  creates (or rotates) the MLflow users of config/platform.yaml through MLflow's
                   auth REST API, grants their permissions, and stores their credentials as the
                   GitHub secrets that name them.

One module per concept: `recorder` (the calls, printed or only recorded), `values` (terraform
outputs, Secrets Manager, the caller's environment), one module per step (`state_bucket`,
`codeowners`, `repository`, `mlflow_users`), `oidc` (the roles' trust against the environments)
and `run` (the whole run).

Every step runs against a backend that either executes and logs each call or, with --dry-run,
only records it: one code path, so the dry run prints exactly what a first run would do.
Secret values are never printed (dry run or not): a call shows where the value comes from.
"""
