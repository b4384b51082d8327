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
  }

  expect_failures = [var.mlflow_certificate_arn]
}
