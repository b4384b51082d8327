# Production settings of the stack root (../stack): `make tf-plan ENV=production` passes this file.
# Committed and reviewed like code, so no secrets. github_repository, state_bucket_name and
# aws_region are not set here: they come from TF_VAR_* (the workflow's env, or exported by hand),
# and a value here would override them.
environment = "production"

vpc_cidr_block = "10.50.0.0/16"

# Survives a zone outage: a NAT gateway per zone and a standby database.
single_nat_gateway = false
mlflow_db_multi_az = true

api_min_capacity = 2
api_max_capacity = 8

# aws_account_id = "123456789012"
# Same account as staging? The GitHub OIDC provider exists once per account:
# create_oidc_provider = false
# oidc_provider_arn    = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
# HTTPS for the API (an ACM certificate in the same region); plans warn until it is set:
# api_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/..."
# Who may reach MLflow besides the VPC (VPN, self-hosted runners):
# mlflow_allowed_cidr_blocks = ["203.0.113.0/24"]
