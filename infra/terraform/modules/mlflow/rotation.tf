# The database password rotates (RDS manages it in Secrets Manager, every 7 days by default).
# The task definition names the secret by ARN and JSON key (DB_PASSWORD, main.tf), so a task
# started after a rotation reads the new password; a running task keeps the old one and can open
# no new connection while /health stays 200. So a successful rotation replaces the tasks: an
# EventBridge rule on Secrets Manager's RotationSucceeded event (through CloudTrail) for this
# secret starts a state machine that forces a new deployment of the service (ECS rolls the tasks
# with the circuit breaker, the old ones drain). By hand, the same:
#   aws ecs update-service --cluster <cluster> --service <service> --force-new-deployment
# moto implements neither Step Functions' ValidateStateMachineDefinition (which the provider
# calls before creating the machine) nor rotation events: the moto world switches this off
# (replace_tasks_on_rotation), modules/mlflow/tests checks the plan; that the event arrives and
# the tasks are replaced only a real account shows.

locals {
  replace_on_rotation = var.replace_tasks_on_rotation && var.container_image != null
}

resource "aws_cloudwatch_event_rule" "db_password_rotated" {
  count = local.replace_on_rotation ? 1 : 0

  name_prefix = "${substr(var.name, 0, 30)}-db-rotated-"
  description = "MLflow's database password rotated: replace the MLflow tasks"
  event_pattern = jsonencode({
    source        = ["aws.secretsmanager"]
    "detail-type" = ["AWS Service Event via CloudTrail"]
    detail = {
      eventSource = ["secretsmanager.amazonaws.com"]
      eventName   = ["RotationSucceeded"]
      additionalEventData = {
        SecretId = [local.db_secret_arn]
      }
    }
  })
  tags = var.tags
}

data "aws_iam_policy_document" "states_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replace_tasks" {
  count = local.replace_on_rotation ? 1 : 0

  name_prefix          = "${substr(var.name, 0, 24)}-replace-"
  description          = "Forces a new deployment of the MLflow service after a database password rotation"
  assume_role_policy   = data.aws_iam_policy_document.states_assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "replace_tasks" {
  count = local.replace_on_rotation ? 1 : 0

  statement {
    sid       = "ForceNewDeploymentOfMlflowOnly"
    actions   = ["ecs:UpdateService"]
    resources = [module.server.service_arn]
  }
}

resource "aws_iam_role_policy" "replace_tasks" {
  count = local.replace_on_rotation ? 1 : 0

  name   = "force-new-deployment"
  role   = aws_iam_role.replace_tasks[0].id
  policy = data.aws_iam_policy_document.replace_tasks[0].json
}

resource "aws_sfn_state_machine" "replace_tasks" {
  #checkov:skip=CKV_AWS_284:One SDK call, no data; X-Ray tracing adds nothing to diagnose.
  #checkov:skip=CKV_AWS_285:Execution history (90 days) records every run; no log group needed for one SDK call.
  #checkov:skip=CKV_AWS_364:Only EventBridge's role may start it (start_replace), for this one rule.
  count = local.replace_on_rotation ? 1 : 0

  name_prefix = "${substr(var.name, 0, 40)}-replace-tasks-"
  role_arn    = aws_iam_role.replace_tasks[0].arn
  definition = jsonencode({
    Comment = "Replace the MLflow tasks so they read the rotated database password"
    StartAt = "ForceNewDeployment"
    States = {
      ForceNewDeployment = {
        Type     = "Task"
        Resource = "arn:aws:states:::aws-sdk:ecs:updateService"
        Parameters = {
          Cluster            = var.cluster_arn
          Service            = module.server.service_name
          ForceNewDeployment = true
        }
        Retry = [{ ErrorEquals = ["States.ALL"], IntervalSeconds = 30, MaxAttempts = 5, BackoffRate = 2 }]
        End   = true
      }
    }
  })

  tags = var.tags
}

resource "aws_iam_role" "start_replace" {
  count = local.replace_on_rotation ? 1 : 0

  name_prefix          = "${substr(var.name, 0, 24)}-rotated-"
  description          = "EventBridge starts the MLflow task replacement after a password rotation"
  assume_role_policy   = data.aws_iam_policy_document.events_assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "start_replace" {
  count = local.replace_on_rotation ? 1 : 0

  statement {
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.replace_tasks[0].arn]
  }
}

resource "aws_iam_role_policy" "start_replace" {
  count = local.replace_on_rotation ? 1 : 0

  name   = "start-replace-tasks"
  role   = aws_iam_role.start_replace[0].id
  policy = data.aws_iam_policy_document.start_replace[0].json
}

resource "aws_cloudwatch_event_target" "replace_tasks" {
  count = local.replace_on_rotation ? 1 : 0

  rule     = aws_cloudwatch_event_rule.db_password_rotated[0].name
  arn      = aws_sfn_state_machine.replace_tasks[0].arn
  role_arn = aws_iam_role.start_replace[0].arn
}
