# The environment's deploy role: `mlops deploy --env <env>` (GitHub environment <env>, main
# only) registers a revision of the API's task definition family and rolls the service to it.
# It carries the platform's permissions boundary for this environment, like every role this
# root creates (the environment's terraform role may create no other kind). Only production's
# deploy role (trusted from the `production` environment on main only) changes what production
# serves: any other environment's deploy role also carries an explicit Deny of production's
# service, task definitions and roles (`never_production`).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  ecs_arn = "arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
  iam_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}"
  # Every production resource a root names starts with this (local.name of the production root).
  production_prefix = "${var.project}-production"
  is_production     = var.environment == "production"
  api_family        = module.api.task_definition_family
  api_service       = "${local.ecs_arn}:service/${aws_ecs_cluster.this.name}/${module.api.service_name}"
  # The platform's DVC remote (absent from a platform applied before it had one: no statement).
  dvc_remote = try(
    { bucket_arn = local.platform.dvc_remote_bucket_arn, prefix = local.platform.dvc_remote_prefix },
    null,
  )
}

data "aws_iam_policy_document" "deploy" {
  # The release's image must exist before ECS is touched (ecr:DescribeImages by digest).
  statement {
    sid       = "EcrDescribeReleaseImages"
    actions   = ["ecr:DescribeImages"]
    resources = [local.platform.ecr_serve_repository_arn]
  }

  # Wildcard-only in IAM (service authorization reference): no resource can be named.
  statement {
    sid       = "EcsDescribeTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "EcsRegisterApiRevisions"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["${local.ecs_arn}:task-definition/${local.api_family}:*"]
  }

  # RegisterTaskDefinition with tags (the family's tags are copied, and default_tags guarantee
  # some) is also authorized as ecs:TagResource; allowed only as part of that registration
  # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
  statement {
    sid       = "EcsTagOnRegister"
    actions   = ["ecs:TagResource"]
    resources = ["${local.ecs_arn}:task-definition/${local.api_family}:*"]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "EcsDeployApiService"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = [local.api_service]
  }

  # A revision names the task and execution roles; ECS checks iam:PassRole for both.
  statement {
    sid       = "PassOnlyApiTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [module.api.task_role_arn, module.api.execution_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # `mlops deploy` applies the promotion's gates, among them data-in-remote: HeadObject of the
  # version's data in the DVC remote. ListBucket on the prefix makes a missing object a 404 (not
  # a 403); no kms:Decrypt, so the role can see that the data exists, never read it.
  dynamic "statement" {
    for_each = local.dvc_remote == null ? [] : [local.dvc_remote]
    content {
      sid       = "ListDvcPrefix"
      actions   = ["s3:ListBucket"]
      resources = [statement.value.bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${statement.value.prefix}/*", statement.value.prefix]
      }
    }
  }

  dynamic "statement" {
    for_each = local.dvc_remote == null ? [] : [local.dvc_remote]
    content {
      sid       = "HeadDvcObjects"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value.bucket_arn}/${statement.value.prefix}/*"]
    }
  }
}

data "aws_iam_policy_document" "never_production" {
  count = local.is_production ? 0 : 1

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
      "${local.ecs_arn}:service/${local.production_prefix}/*",
      "${local.ecs_arn}:task-definition/${local.production_prefix}-*:*",
    ]
  }

  statement {
    sid       = "NeverPassProductionRoles"
    effect    = "Deny"
    actions   = ["iam:PassRole"]
    resources = ["${local.iam_arn}:role/${local.production_prefix}-*"]
  }
}

module "role_deploy" {
  source = "../modules/github_role"

  name                 = "${local.name}-github-deploy"
  description          = "CD of ${var.github_repository} in ${var.environment}: roll the API to a release"
  oidc_provider_arn    = local.platform.oidc_provider_arn
  github_repository    = var.github_repository
  github_environment   = var.environment
  permissions_boundary = local.platform.permissions_boundary_arn[var.environment]
  policies = merge(
    { deploy = data.aws_iam_policy_document.deploy.json },
    { for d in data.aws_iam_policy_document.never_production : "never_production" => d.json },
  )
}
