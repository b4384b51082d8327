# Staging settings of the stack root (../stack): `make tf-plan ENV=staging` passes this file.
# Committed and reviewed like code, so no secrets. github_repository, state_bucket_name and
# aws_region are not set here: they come from TF_VAR_* (the workflow's env, or exported by hand),
# and a value here would override them.
environment = "staging"

vpc_cidr_block = "10.40.0.0/16"

# Cost over availability: one NAT gateway and a single-zone database.
single_nat_gateway = true
mlflow_db_multi_az = false

api_min_capacity = 1
api_max_capacity = 3

# aws_account_id = "123456789012"
# HTTPS for the API (an ACM certificate in the same region):
# api_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/..."
# Who may reach MLflow besides the VPC (VPN, self-hosted runners):
# mlflow_allowed_cidr_blocks = ["203.0.113.0/24"]
