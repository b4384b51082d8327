# What the platform's terraform roles need for MLflow's password-rotation handling
# (modules/mlflow/rotation.tf): the EventBridge rule and target, the state machine, and passing
# their two roles to EventBridge and Step Functions. Kept next to the resources it serves; the
# rest of each role's policy is terraform_roles.tf.

locals {
  rotation = {
    rules          = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.project}-mlflow-*"
    state_machines = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${var.project}-mlflow-*"
    roles          = "${local.iam_arn}:role/${var.project}-mlflow-*"
  }
}

data "aws_iam_policy_document" "apply_mlflow_rotation" {
  statement {
    sid = "RotationRule"
    actions = [
      "events:DeleteRule",
      "events:DescribeRule",
      "events:ListTagsForResource",
      "events:ListTargetsByRule",
      "events:PutRule",
      "events:PutTargets",
      "events:RemoveTargets",
      "events:TagResource",
      "events:UntagResource",
    ]
    resources = [local.rotation.rules]
  }

  statement {
    sid = "RotationStateMachine"
    actions = [
      "states:CreateStateMachine",
      "states:DeleteStateMachine",
      "states:DescribeStateMachine",
      "states:ListStateMachineVersions",
      "states:ListTagsForResource",
      "states:TagResource",
      "states:UntagResource",
      "states:UpdateStateMachine",
    ]
    resources = [local.rotation.state_machines]
  }

  statement {
    sid       = "PassRotationRoles"
    actions   = ["iam:PassRole"]
    resources = [local.rotation.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["events.amazonaws.com", "states.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "plan_mlflow_rotation" {
  statement {
    sid       = "RotationRule"
    actions   = ["events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule"]
    resources = [local.rotation.rules]
  }

  statement {
    sid       = "RotationStateMachine"
    actions   = ["states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"]
    resources = [local.rotation.state_machines]
  }
}

resource "aws_iam_role_policy" "apply_mlflow_rotation" {
  name   = "mlflow-rotation"
  role   = module.role_terraform["platform"].name
  policy = data.aws_iam_policy_document.apply_mlflow_rotation.json
}

resource "aws_iam_role_policy" "plan_mlflow_rotation" {
  name   = "mlflow-rotation"
  role   = module.role_plan["platform"].name
  policy = data.aws_iam_policy_document.plan_mlflow_rotation.json
}
