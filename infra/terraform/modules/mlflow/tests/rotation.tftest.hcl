# The database password rotation replaces the MLflow tasks (rotation.tf), as planned with a
# mocked AWS provider: moto implements no ValidateStateMachineDefinition and fires no rotation
# event. That the event arrives and ECS replaces the tasks only a real account shows.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_vpc" {
    defaults = { cidr_block = "10.40.0.0/16" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_db_instance" {
    override_during = plan
    defaults = {
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123", kms_key_id = "k", secret_status = "active" }]
    }
  }
}

variables {
  name                = "credit-risk-mlflow"
  vpc_id              = "vpc-0123"
  private_subnet_ids  = ["subnet-a", "subnet-b"]
  public_subnet_ids   = ["subnet-c", "subnet-d"]
  cluster_arn         = "arn:aws:ecs:eu-west-1:123456789012:cluster/credit-risk-platform"
  cluster_name        = "credit-risk-platform"
  kms_key_arn         = "arn:aws:kms:eu-west-1:123456789012:key/k"
  container_image     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk/mlflow@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  ecr_repository_arns = ["arn:aws:ecr:eu-west-1:123456789012:repository/credit-risk/mlflow"]
  allowed_cidr_blocks = ["10.40.0.0/16"]
}

run "a_rotation_forces_a_new_deployment_of_the_server" {
  command = plan

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.db_password_rotated[0].event_pattern).detail.eventName == ["RotationSucceeded"]
    error_message = "the rule fires on Secrets Manager's RotationSucceeded event"
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.db_password_rotated[0].event_pattern).detail.additionalEventData.SecretId == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123"]
    error_message = "only the database's own secret triggers it"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.replace_tasks[0].definition).States.ForceNewDeployment.Resource == "arn:aws:states:::aws-sdk:ecs:updateService"
    error_message = "the state machine calls ECS UpdateService"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.replace_tasks[0].definition).States.ForceNewDeployment.Parameters == { Cluster = var.cluster_arn, Service = "credit-risk-mlflow", ForceNewDeployment = true }
    error_message = "it forces a new deployment of the MLflow service"
  }
}

run "switched_off_there_is_no_rule" {
  command = plan

  variables {
    replace_tasks_on_rotation = false
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.db_password_rotated) == 0 && length(aws_sfn_state_machine.replace_tasks) == 0
    error_message = "replace_tasks_on_rotation = false creates nothing"
  }
}
