# Production settings of the environment root (../stack): `make tf-plan ROOT=production` passes
# this file. Committed and reviewed like code, so no secrets. github_repository and aws_region
# come from TF_VAR_* (the workflow's env, or exported by hand); a value here would override them.
environment = "production"

api_min_capacity = 2
api_max_capacity = 8

# Production refuses an open ingress: set your callers' egress ranges (203.0.113.0/24 is a
# documentation range nobody calls from, so nothing is reachable until you change it).
api_allowed_cidr_blocks = ["203.0.113.0/24"]

# Production serves https://api.production.<domain_name> only: its plan fails until these name
# your domain and its public Route 53 zone (the platform's; ACM issues and DNS-validates the
# certificate). A certificate you already hold for that name (a wildcard) may replace ACM's.
# domain_name     = "ml.example.com"
# route53_zone_id = "Z0123456789ABCDEFGHIJ"
# api_certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/..."

# The serve image of the first release verified in staging (README, bootstrap step 5):
# api_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve@sha256:..."
# aws_account_id = "123456789012"
