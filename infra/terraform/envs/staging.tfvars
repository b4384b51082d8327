# Staging settings of the environment root (../stack): `make tf-plan ROOT=staging` passes this
# file. Committed and reviewed like code, so no secrets. github_repository and aws_region come
# from TF_VAR_* (the workflow's env, or exported by hand); a value here would override them.
# Network, NAT gateways and the database are the platform's (envs/platform.tfvars).
environment = "staging"

api_min_capacity = 1
api_max_capacity = 3

# Who may call the API. Staging's e2e and smoke tests run on GitHub-hosted runners, whose
# addresses are not one range; the bearer token (SERVE_API_TOKEN, from Secrets Manager) guards
# /predict. Narrow this to your runners' or VPN's egress when you can.
api_allowed_cidr_blocks = ["0.0.0.0/0"]

# The serve image of the first release (README, bootstrap step 5); CD deploys every later one:
# api_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve@sha256:..."
# aws_account_id = "123456789012"
# HTTPS for the API (an ACM certificate in the same region):
# api_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/..."
