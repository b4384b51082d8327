# Offline checks of the platform root's guard rails (terraform test with a mocked AWS provider:
# no credentials, no network; `make tf-check` runs it). What the plan contains is checked against
# moto in tests/integration/test_terraform_moto.py.

mock_provider "aws" {
  mock_data "aws_vpc" {
    defaults = { cidr_block = "10.40.0.0/16" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
}

variables {
  github_repository  = "acme/credit-risk-gitops"
  state_bucket_name  = "acme-terraform-state"
  vpc_cidr_block     = "10.40.0.0/16"
  single_nat_gateway = true
  mlflow_db_multi_az = false
  mlflow_image       = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  # The in-VPC runners (runner.tf) and the names (dns.tf), as an adopted platform has them.
  github_connection_arn = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-0000-4000-8000-000000000000"
  domain_name           = "ml.example.com"
  route53_zone_id       = "Z0123456789EXAMPLE"
}

run "plans_with_the_pushed_mlflow_image" {
  command = plan
}

run "a_placeholder_mlflow_image_is_refused" {
  command = plan

  variables {
    mlflow_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow:bootstrap"
  }

  expect_failures = [var.mlflow_image]
}

run "without_an_image_there_is_no_mlflow_service_yet" {
  command = plan

  variables {
    mlflow_image = null
  }

  # The check warns (it does not fail a plan); the moto test shows no ECS service is planned.
  expect_failures = [check.mlflow_service_runs]

}

run "a_public_registry_needs_https" {
  command = plan

  variables {
    mlflow_public_endpoint = true
    domain_name            = null
    route53_zone_id        = null
  }

  expect_failures = [var.mlflow_certificate_arn]
}

# --- Where the registry jobs run (modules/codebuild_runner) ------------------------------------
# moto has CodeBuild projects but no webhooks or source credentials: the plan's shape is checked
# here; that GitHub delivers workflow_job events and a build registers a runner for the job only
# a real account and repository show.

run "registry_jobs_get_in_vpc_codebuild_runners" {
  command = plan

  # The project itself: modules/codebuild_runner/tests.
  assert {
    condition     = output.codebuild_runner_project == "credit-risk-gha-runner"
    error_message = "the project name is the runs-on label's middle (config/platform.yaml runners.codebuild_project)"
  }

  assert {
    condition     = output.codebuild_runner_runs_on == "codebuild-credit-risk-gha-runner-$${{ github.run_id }}-$${{ github.run_attempt }}"
    error_message = "runs-on must be codebuild-<project>-$${{ github.run_id }}-$${{ github.run_attempt }}"
  }
}

run "without_a_github_connection_there_is_no_runner_and_the_plan_says_so" {
  command = plan

  variables {
    github_connection_arn = null
  }

  expect_failures = [check.registry_runner_exists]

  assert {
    condition     = length(module.codebuild_runner) == 0
    error_message = "no runner can register without the GitHub connection"
  }
}

# --- Names and TLS (modules/dns) ----------------------------------------------------------------

run "mlflow_has_its_own_name_and_certificate" {
  command = plan

  # The certificate, its validation and the records: modules/dns/tests and the moto plan.
  assert {
    condition     = output.mlflow_tracking_uri == "https://mlflow.ml.example.com"
    error_message = "the tracking URI every client uses is https://mlflow.<domain>, never the load balancer's name"
  }

  assert {
    condition     = module.mlflow_name[0].name == "mlflow.ml.example.com"
    error_message = "MLflow's name is mlflow.<domain>"
  }
}

run "a_domain_without_its_zone_is_refused" {
  command = plan

  variables {
    route53_zone_id = null
  }

  expect_failures = [var.route53_zone_id]
}

run "spark_plans_the_emr_serverless_application_with_its_role_and_secret" {
  command = plan

  variables {
    spark_enabled = true
  }

  assert {
    condition     = length(module.spark) == 1 && length(aws_secretsmanager_secret.spark_registry) == 1
    error_message = "spark_enabled must create the EMR Serverless module and its registry secret."
  }

  assert {
    condition     = length(aws_iam_role_policy.apply_spark) == 1 && length(aws_iam_role_policy.plan_spark) == 1
    error_message = "The platform's terraform and plan roles need the EMR Serverless permissions."
  }
}

run "spark_is_off_by_default" {
  command = plan

  assert {
    condition     = length(module.spark) == 0 && output.spark == null
    error_message = "Without spark_enabled nothing of EMR Serverless is planned."
  }
}

run "spark_refuses_a_release_without_spark_3_5" {
  command = plan

  variables {
    spark_enabled       = true
    spark_release_label = "emr-6.15.0"
  }

  expect_failures = [var.spark_release_label]
}
