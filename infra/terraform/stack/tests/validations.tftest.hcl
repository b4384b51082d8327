# Offline checks of the environment root's guard rails (terraform test with a mocked AWS
# provider: no credentials, no network; `make tf-check` runs it). What the plans contain is
# checked against moto in tests/integration/test_terraform_moto.py.

mock_provider "aws" {
  mock_data "aws_vpc" {
    defaults = { cidr_block = "10.40.0.0/16" }
  }
  override_data {
    target = data.aws_ssm_parameter.platform
    values = {
      insecure_value = "{\"schema_version\":1,\"vpc_id\":\"vpc-0123\",\"vpc_cidr_block\":\"10.40.0.0/16\",\"private_subnet_ids\":[\"subnet-a\",\"subnet-b\"],\"public_subnet_ids\":[\"subnet-c\",\"subnet-d\"],\"kms_key_arn\":\"arn:aws:kms:eu-west-1:123456789012:key/k\",\"ecr_serve_repository_arn\":\"arn:aws:ecr:eu-west-1:123456789012:repository/credit-risk/serve\",\"ecr_serve_repository_url\":\"123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve\",\"mlflow_tracking_uri\":\"http://mlflow.internal\",\"oidc_provider_arn\":\"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com\",\"permissions_boundary_arn\":{\"staging\":\"arn:aws:iam::123456789012:policy/credit-risk-boundary-staging\",\"production\":\"arn:aws:iam::123456789012:policy/credit-risk-boundary-production\"},\"dvc_remote_bucket_arn\":\"arn:aws:s3:::credit-risk-mlflow-artifacts\",\"dvc_remote_prefix\":\"dvc\"}"
    }
  }
  # Known during plan, so the container definition can be asserted on without an apply.
  mock_resource "aws_secretsmanager_secret" {
    override_during = plan
    defaults = {
      arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:credit-risk/x-AbCdEf"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  github_repository = "acme/credit-risk-gitops"
  api_image         = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  api_min_capacity  = 1
  api_max_capacity  = 2
}

run "staging_without_a_domain_keeps_http_inside_the_vpc" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["0.0.0.0/0"]
  }

  assert {
    condition     = length(module.api_name) == 0
    error_message = "no name, no certificate without a domain"
  }
}

run "staging_with_a_domain_is_https_under_its_name" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["0.0.0.0/0"]
    domain_name             = "ml.example.com"
    route53_zone_id         = "Z0123456789EXAMPLE"
  }

  assert {
    condition     = output.service_url == "https://api.staging.ml.example.com"
    error_message = "SERVICE_URL (smoke and e2e) is https://api.<environment>.<domain>"
  }

  assert {
    condition     = output.github_environment_variables.SERVICE_URL == "https://api.staging.ml.example.com"
    error_message = "the bootstrap sets SERVICE_URL to the name"
  }

  assert {
    condition     = module.api_name[0].name == "api.staging.ml.example.com"
    error_message = "the API's name is api.<environment>.<domain>"
  }
}

run "production_runs_as_production_with_the_token_from_secrets_manager" {
  command = plan

  variables {
    environment             = "production"
    api_allowed_cidr_blocks = ["203.0.113.0/24"]
    domain_name             = "ml.example.com"
    route53_zone_id         = "Z0123456789EXAMPLE"
  }

  assert {
    condition     = output.service_url == "https://api.production.ml.example.com"
    error_message = "production's SERVICE_URL is https://api.production.<domain>"
  }

  assert {
    condition     = contains([for e in jsondecode(module.api.container_definitions_json)[0].environment : "${e.name}=${e.value}"], "SERVE_ENVIRONMENT=production")
    error_message = "the production task must run with SERVE_ENVIRONMENT=production"
  }

  assert {
    condition     = [for s in jsondecode(module.api.container_definitions_json)[0].secrets : s.valueFrom if s.name == "SERVE_API_TOKEN"] == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:credit-risk/x-AbCdEf:token::"]
    error_message = "the bearer token must come from Secrets Manager (secrets, valueFrom)"
  }

  assert {
    condition     = length([for e in jsondecode(module.api.container_definitions_json)[0].environment : e.name if can(regex("TOKEN|PASSWORD", e.name))]) == 0
    error_message = "no token or password in the plain environment"
  }
}

run "production_without_a_name_is_refused" {
  command = plan

  variables {
    environment             = "production"
    api_allowed_cidr_blocks = ["203.0.113.0/24"]
  }

  expect_failures = [var.domain_name]
}

run "a_certificate_without_a_name_is_refused" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["10.0.0.0/8"]
    api_certificate_arn     = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  }

  expect_failures = [var.api_certificate_arn]
}

run "production_open_to_the_internet_is_refused" {
  command = plan

  variables {
    environment             = "production"
    domain_name             = "ml.example.com"
    route53_zone_id         = "Z0123456789EXAMPLE"
    api_allowed_cidr_blocks = ["0.0.0.0/0"]
  }

  expect_failures = [var.api_allowed_cidr_blocks]
}

run "an_image_nothing_pushed_is_refused" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["10.0.0.0/8"]
    api_image               = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/serve:latest"
  }

  expect_failures = [var.api_image]
}

run "secrets_in_plain_environment_are_refused" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["10.0.0.0/8"]
    api_environment         = { SERVE_API_TOKEN = "hunter2" }
  }

  expect_failures = [var.api_environment]
}

run "the_feature_store_is_tls_auth_encrypted_and_reachable_from_the_api_tasks_only" {
  command = plan

  variables {
    environment             = "production"
    domain_name             = "ml.example.com"
    route53_zone_id         = "Z0123456789EXAMPLE"
    api_allowed_cidr_blocks = ["203.0.113.0/24"]
    feature_store_enabled   = true
  }

  override_resource {
    target          = module.api.aws_security_group.tasks
    override_during = plan
    values          = { id = "sg-tasks" }
  }

  override_resource {
    target          = module.feature_store[0].aws_elasticache_replication_group.this
    override_during = plan
    values          = { primary_endpoint_address = "master.features.abc123.euw1.cache.amazonaws.com" }
  }

  override_data {
    target = module.feature_store[0].data.aws_secretsmanager_secret_version.auth_token
    values = { secret_string = "{\"token\":\"0123456789abcdef0123456789abcdef\"}" }
  }

  assert {
    condition     = module.feature_store[0].security.transit_encryption && module.feature_store[0].security.transit_mode == "required"
    error_message = "the feature store must require TLS in transit"
  }

  assert {
    condition     = module.feature_store[0].security.at_rest_encryption && module.feature_store[0].security.kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/k"
    error_message = "the feature store must be encrypted at rest with the platform key"
  }

  assert {
    condition     = module.feature_store[0].security.auth_token_secret == aws_secretsmanager_secret.feature_store_token.arn
    error_message = "the AUTH token must come from the feature_store Secrets Manager secret"
  }

  assert {
    condition     = module.feature_store[0].security.ingress_from == ["sg-tasks"] && length(module.feature_store[0].security.ingress_cidrs) == 0
    error_message = "only the API's task security group may reach the feature store (no CIDR ingress)"
  }

  assert {
    condition     = module.feature_store[0].security.eviction_policy == "noeviction"
    error_message = "the feature store must never evict a current snapshot's keys"
  }

  assert {
    condition     = [for s in jsondecode(module.api.container_definitions_json)[0].secrets : s.valueFrom if s.name == "SERVE_FEATURES_REDIS_AUTH_TOKEN"] == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:credit-risk/x-AbCdEf:token::"]
    error_message = "the API must get the Redis token from Secrets Manager (secrets, valueFrom), never a plain variable"
  }

  assert {
    condition     = contains([for e in jsondecode(module.api.container_definitions_json)[0].environment : "${e.name}=${e.value}"], "SERVE_FEATURES_REDIS_URL=rediss://master.features.abc123.euw1.cache.amazonaws.com:6379/0")
    error_message = "the API must reach the feature store over TLS (rediss://) at its primary endpoint"
  }
}

run "without_the_feature_store_the_api_has_no_redis_settings" {
  command = plan

  variables {
    environment             = "staging"
    api_allowed_cidr_blocks = ["0.0.0.0/0"]
  }

  assert {
    condition     = length(module.feature_store) == 0 && length([for s in jsondecode(module.api.container_definitions_json)[0].secrets : s if s.name == "SERVE_FEATURES_REDIS_AUTH_TOKEN"]) == 0
    error_message = "the feature store and the API's Redis settings must be off by default"
  }
}
