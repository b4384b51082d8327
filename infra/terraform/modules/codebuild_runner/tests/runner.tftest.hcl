# The CodeBuild-hosted runners as planned (mocked AWS: moto has CodeBuild projects but no webhooks
# or source credentials). That GitHub delivers the workflow_job events and that a build registers
# an ephemeral runner for its job only a real account and repository show.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  name                  = "credit-risk-gha-runner"
  github_repository     = "acme/credit-risk-gitops"
  github_connection_arn = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d-0000-4000-8000-000000000000"
  vpc_id                = "vpc-0123"
  vpc_cidr_block        = "10.40.0.0/16"
  subnet_ids            = ["subnet-private-a", "subnet-private-b"]
  kms_key_arn           = "arn:aws:kms:eu-west-1:123456789012:key/k"
}

run "a_queued_job_starts_a_runner_in_the_private_subnets" {
  command = plan

  assert {
    condition     = [for f in flatten([for g in aws_codebuild_webhook.this.filter_group : g.filter]) : "${f.type}=${f.pattern}"] == ["EVENT=WORKFLOW_JOB_QUEUED"]
    error_message = "the webhook must start a runner for every queued workflow job (WORKFLOW_JOB_QUEUED)"
  }

  assert {
    condition     = aws_codebuild_webhook.this.project_name == "credit-risk-gha-runner"
    error_message = "the webhook belongs to the runner project"
  }

  assert {
    condition     = aws_codebuild_project.this.vpc_config[0].vpc_id == "vpc-0123" && toset(aws_codebuild_project.this.vpc_config[0].subnets) == toset(["subnet-private-a", "subnet-private-b"])
    error_message = "builds run in the platform VPC's private subnets, where MLflow's internal load balancer is"
  }

  assert {
    condition     = aws_codebuild_project.this.source[0].type == "GITHUB" && aws_codebuild_project.this.source[0].location == "https://github.com/acme/credit-risk-gitops.git"
    error_message = "the runner serves this repository only"
  }

  assert {
    condition     = aws_codebuild_project.this.source[0].auth[0].type == "CODECONNECTIONS" && aws_codebuild_project.this.source[0].auth[0].resource == var.github_connection_arn
    error_message = "the runner reaches GitHub through the CodeConnections connection (no token in terraform)"
  }

  assert {
    condition     = aws_codebuild_project.this.environment[0].privileged_mode && aws_codebuild_project.this.environment[0].image == "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    error_message = "the release job builds images with docker: a curated image in privileged mode"
  }

  assert {
    condition     = aws_codebuild_project.this.logs_config[0].cloudwatch_logs[0].status == "ENABLED" && aws_codebuild_project.this.logs_config[0].cloudwatch_logs[0].group_name == "/codebuild/credit-risk-gha-runner"
    error_message = "the runners' logs go to their own, encrypted CloudWatch log group"
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.kms_key_id == var.kms_key_arn
    error_message = "the log group is encrypted with the platform key"
  }

  assert {
    condition     = output.runs_on == "codebuild-credit-risk-gha-runner-$${{ github.run_id }}-$${{ github.run_attempt }}"
    error_message = "runs-on of a job on this runner: codebuild-<project>-$${{ github.run_id }}-$${{ github.run_attempt }}"
  }

  assert {
    condition     = aws_vpc_security_group_egress_rule.https.from_port == 443 && aws_vpc_security_group_egress_rule.https.to_port == 443 && toset(keys(aws_vpc_security_group_egress_rule.dns)) == toset(["udp", "tcp"])
    error_message = "the runners' only way out is HTTPS (and DNS inside the VPC)"
  }
}

run "a_connection_that_is_not_a_codeconnections_arn_is_refused" {
  command = plan

  variables {
    github_connection_arn = "ghp_0123456789"
  }

  expect_failures = [var.github_connection_arn]
}
