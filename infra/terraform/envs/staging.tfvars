# Staging settings of the environment root (../stack): `make tf-plan ROOT=staging` passes this
# file. Committed and reviewed like code, so no secrets. github_repository and aws_region come
# from TF_VAR_* (the workflow's env, or exported by hand); a value here would override them.
# Network, NAT gateways and the database are the platform's (envs/platform.tfvars).
environment = "staging"

api_min_capacity = 1
api_max_capacity = 3

# Who may call the API once it has a name (domain_name below). Staging's smoke and e2e tests run
# on the in-VPC runners (config/platform.yaml runners); the bearer token (SERVE_API_TOKEN, from
# Secrets Manager) guards /predict. Narrow this to your VPN's egress when you can.
api_allowed_cidr_blocks = ["0.0.0.0/0"]

# The serve image of the first release (README, bootstrap step 5); CD deploys every later one:
# api_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve@sha256:..."
# aws_account_id = "123456789012"
# https://api.staging.<domain_name> (the platform's domain and zone; ACM issues the certificate).
# Without them the API stays on an internal load balancer, plain HTTP inside the VPC only.
# domain_name     = "ml.example.com"
# route53_zone_id = "Z0123456789ABCDEFGHIJ"
