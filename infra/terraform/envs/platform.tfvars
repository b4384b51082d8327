# Platform settings (../platform): `make tf-plan ROOT=platform` passes this file. Committed and
# reviewed like code, so no secrets. github_repository, state_bucket_name and aws_region come from
# TF_VAR_* (the workflow's env, or exported by hand); a value here would override them.

vpc_cidr_block = "10.40.0.0/16"

# Survives a zone outage: a NAT gateway per zone and a standby database. (Cheaper: one NAT
# gateway and a single-zone database, at the cost of the registry during a zone outage.)
single_nat_gateway = false
mlflow_db_multi_az = true

# The MLflow server image CD pushed (README, bootstrap step 4). Until it is set, the plan warns
# and MLflow's ECS service is not created:
# mlflow_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow@sha256:..."

# aws_account_id = "123456789012"
# Who may reach MLflow besides the VPC (VPN, self-hosted runners); a public endpoint needs a
# certificate:
# mlflow_allowed_cidr_blocks = ["198.51.100.0/24"]
# mlflow_public_endpoint     = true
# mlflow_certificate_arn     = "arn:aws:acm:eu-west-1:123456789012:certificate/..."

# The platform's names: mlflow.<domain_name> (and api.<environment>.<domain_name> in the
# environment roots), with ACM certificates validated in this public Route 53 zone. The tracking
# URI becomes https://mlflow.<domain_name>.
# domain_name     = "ml.example.com"
# route53_zone_id = "Z0123456789ABCDEFGHIJ"

# The in-VPC GitHub Actions runners (config/platform.yaml runners: in-vpc): the AWS CodeConnections
# connection to GitHub that a person authorised once (infra/terraform/README.md, bootstrap).
# github_connection_arn = "arn:aws:codeconnections:eu-west-1:123456789012:connection/..."

# Spark on EMR Serverless (docs/spark.md): nightly book scoring and training on large snapshots.
# Off until the book outgrows one machine; the application costs nothing while no job runs.
# spark_enabled  = true
# spark_max_vcpu = 64
