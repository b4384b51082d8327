# Who may do what, from GitHub Actions (OIDC only, no static keys). Every role's trust policy
# pins the repository, a GitHub environment and the main branch (modules/github_role), except
# the read-only plan roles, which pull requests assume. Each role's policy names the actions the
# code path that uses it really calls (tests/integration/test_iam_least_privilege.py records
# those calls under moto and evaluates them against these documents), on the narrowest
# resources IAM can express for them.
#
#   role                      GitHub environment (on main)    for
#   <p>-github-release        release                         push images; deploy the MLflow service
#   <p>-github-train          retrain                         read training data from S3 (optional)
#   <p>-github-plan-<root>    (pull requests)                 terraform plan of one root, read-only
#   <p>-github-terraform-<r>  infrastructure-<root>           terraform apply of one root
# The deploy role of each environment lives in that environment's root (stack/), next to the
# service it deploys. What production serves is pinned in its task definition: only production's
# deploy role (environment `production` on main) may change it. The release and train roles carry
# an explicit Deny of that (policy `never_production` below), so no Allow added here later can
# widen them into production.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  arn        = { for s in ["ecs", "logs", "secretsmanager", "ssm", "elasticloadbalancing", "ec2", "application-autoscaling", "rds", "kms", "ecr"] : s => "arn:${local.partition}:${s}:${local.region}:${local.account_id}" }
  iam_arn    = "arn:${local.partition}:iam::${local.account_id}"

  state_bucket_arn = "arn:${local.partition}:s3:::${var.state_bucket_name}"
  state_key        = { for r in local.roots : r => "${var.state_key_prefix}${r}/terraform.tfstate" }
  # The S3 backend lists <workspace_key_prefix>/ for workspaces (mk/terraform.mk sets it per root).
  workspace_prefix = { for r in local.roots : r => "${var.state_key_prefix}${r}/workspaces/" }

  mlflow_family       = module.mlflow.task_definition_family
  mlflow_service_arn  = "${local.arn.ecs}:service/${aws_ecs_cluster.platform.name}/${module.mlflow.service_name}"
  platform_parameter  = "${local.arn.ssm}:parameter/${var.project}/platform/outputs"
  passed_to_ecs_tasks = { test = "StringEquals", variable = "iam:PassedToService", values = ["ecs-tasks.amazonaws.com"] }
}

# --- Permissions boundary of every role an environment root creates ---------------------------

# The environment's terraform role may create IAM roles only with this boundary attached
# (condition iam:PermissionsBoundary below), so an environment apply can never mint a role
# stronger than what the environment's tasks and deploy role need. The boundary is owned here,
# out of the environment's reach.
data "aws_iam_policy_document" "boundary" {
  for_each = local.env_prefix
  # The deploy role's data-in-remote gate (`mlops deploy` applies the promotion's gates): whether
  # the object a version was trained on is in the DVC remote (dvc.tf, `dvc_exists`).
  source_policy_documents = [data.aws_iam_policy_document.dvc_exists.json]

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPullServeImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
    resources = [module.ecr_serve.repository_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.arn.logs}:log-group:/ecs/${each.value}-*:*"]
  }

  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["${local.arn.secretsmanager}:secret:${each.value}/*"]
  }

  statement {
    sid       = "DecryptWithPlatformKey"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "DescribeTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"]
    resources = ["*"]
  }

  statement {
    sid       = "RegisterOwnTaskDefinitions"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:TagResource"]
    resources = ["${local.arn.ecs}:task-definition/${each.value}-*:*"]
  }

  statement {
    sid       = "DeployOwnServices"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = ["${local.arn.ecs}:service/${each.value}/*"]
  }

  statement {
    sid       = "PassOwnTaskRoles"
    actions   = ["iam:PassRole"]
    resources = ["${local.iam_arn}:role/${each.value}-*"]

    condition {
      test     = local.passed_to_ecs_tasks.test
      variable = local.passed_to_ecs_tasks.variable
      values   = local.passed_to_ecs_tasks.values
    }
  }
}

resource "aws_iam_policy" "boundary" {
  for_each = data.aws_iam_policy_document.boundary

  name        = "${var.project}-boundary-${each.key}"
  description = "Permissions boundary of every role the ${each.key} root creates"
  policy      = each.value.json
}

# --- Release: push images (once per merge) and deploy the MLflow service ----------------------

data "aws_iam_policy_document" "release" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # docker push (and a retag with release-<sha>: BatchGetImage + PutImage of the same manifest);
  # GetDownloadUrlForLayer: `mlops images scan` (trivy) reads the layers of what CD pushed.
  # No BatchDeleteImage: a pushed image is never removed by CD, only by the lifecycle policy
  # (`mlops release untag` of a withdrawn release runs with a maintainer's credentials).
  statement {
    sid = "EcrPushProjectImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
    ]
    resources = [module.ecr_serve.repository_arn, module.ecr_mlflow.repository_arn]
  }

  # DescribeTaskDefinition is wildcard-only in IAM (service authorization reference).
  statement {
    sid       = "EcsDescribeTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "EcsRegisterMlflowRevisions"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["${local.arn.ecs}:task-definition/${local.mlflow_family}:*"]
  }

  # AWS authorizes ecs:TagResource whenever RegisterTaskDefinition carries tags (the provider's
  # default_tags guarantee some): allowed only as part of that registration.
  statement {
    sid       = "EcsTagOnRegister"
    actions   = ["ecs:TagResource"]
    resources = ["${local.arn.ecs}:task-definition/${local.mlflow_family}:*"]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "EcsDeployMlflowService"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = [local.mlflow_service_arn]
  }

  statement {
    sid       = "PassOnlyMlflowTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [module.mlflow.task_role_arn, module.mlflow.execution_role_arn]

    condition {
      test     = local.passed_to_ecs_tasks.test
      variable = local.passed_to_ecs_tasks.variable
      values   = local.passed_to_ecs_tasks.values
    }
  }
}

# --- Nobody but production's deploy role changes what production serves ------------------------

locals {
  # Every production resource the environment root names starts with this (stack/main.tf).
  production_prefix = "${var.project}-production"
}

data "aws_iam_policy_document" "never_production" {
  statement {
    sid    = "NeverChangeProductionServing"
    effect = "Deny"
    actions = [
      "ecs:UpdateService",
      "ecs:CreateService",
      "ecs:DeleteService",
      "ecs:RegisterTaskDefinition",
      "ecs:DeregisterTaskDefinition",
      "ecs:TagResource",
    ]
    resources = [
      "${local.arn.ecs}:service/${local.production_prefix}/*",
      "${local.arn.ecs}:task-definition/${local.production_prefix}-*:*",
    ]
  }

  # A revision runs as the roles it names: passing production's would be as good as owning them.
  statement {
    sid       = "NeverPassProductionRoles"
    effect    = "Deny"
    actions   = ["iam:PassRole"]
    resources = ["${local.iam_arn}:role/${local.production_prefix}-*"]
  }
}

module "role_release" {
  source = "../modules/github_role"

  name               = "${var.project}-github-release"
  description        = "CD of ${var.github_repository} on main: push images once, deploy the MLflow service"
  oidc_provider_arn  = module.github_oidc.oidc_provider_arn
  github_repository  = var.github_repository
  github_environment = var.github_release_environment
  policies = {
    release          = data.aws_iam_policy_document.release.json
    never_production = data.aws_iam_policy_document.never_production.json
  }
}

# --- Train: the retrain job's data (MLflow itself is reached over HTTP with its own users) ------

data "aws_iam_policy_document" "train" {
  count = length(var.training_data_s3_arns) > 0 ? 1 : 0

  statement {
    sid       = "ReadTrainingData"
    actions   = ["s3:GetObject"]
    resources = var.training_data_s3_arns
  }
}

module "role_train" {
  source = "../modules/github_role"

  name               = "${var.project}-github-train"
  description        = "Retrain of ${var.github_repository} on main: read the training data"
  oidc_provider_arn  = module.github_oidc.oidc_provider_arn
  github_repository  = var.github_repository
  github_environment = var.github_retrain_environment
  policies = merge(
    { for d in data.aws_iam_policy_document.train : "train" => d.json },
    { never_production = data.aws_iam_policy_document.never_production.json },
  )
}
