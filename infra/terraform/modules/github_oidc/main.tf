# GitHub Actions reaches AWS only through OIDC: each workflow job exchanges its short-lived
# GitHub token for a role whose trust policy pins the repository and the ref or environment
# the job runs in (the token's `sub` claim). Three roles, from least to most power:
#   ci        - pull requests and main: pull images, describe ECS, read state and plan
#   cd        - jobs in the deployment environments: push images, roll out task definitions
#   terraform - jobs in the `infrastructure` environment only: apply this configuration

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  oidc_host    = "token.actions.githubusercontent.com"
  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn

  ci_subjects = concat(
    ["repo:${var.github_repository}:pull_request"],
    [for b in var.ci_branches : "repo:${var.github_repository}:ref:refs/heads/${b}"],
  )
  cd_subjects        = [for e in var.cd_environments : "repo:${var.github_repository}:environment:${e}"]
  terraform_subjects = ["repo:${var.github_repository}:environment:${var.terraform_environment}"]

  state_bucket_arn = "arn:${local.partition}:s3:::${var.state_bucket_name}"
  state_objects    = "${local.state_bucket_arn}/${var.state_key_prefix}*"
  iam_scope        = "arn:${local.partition}:iam::${local.account_id}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

# --- Trust policies ------------------------------------------------------------------------

data "aws_iam_policy_document" "trust" {
  for_each = {
    ci        = local.ci_subjects
    cd        = local.cd_subjects
    terraform = local.terraform_subjects
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Exact match on repository + ref/environment: no wildcard, so forks and other branches
    # or environments cannot assume the role.
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = each.value
    }
  }
}

# --- CI: read-only -------------------------------------------------------------------------

resource "aws_iam_role" "ci" {
  name                 = "${var.name_prefix}-github-ci"
  description          = "GitHub Actions CI of ${var.github_repository}: read-only"
  assume_role_policy   = data.aws_iam_policy_document.trust["ci"].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "ci" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPullAndDescribe"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
      "ecr:DescribeRepositories",
      "ecr:ListImages",
    ]
    resources = var.ecr_repository_arns
  }

  statement {
    sid       = "EcsDescribe"
    actions   = ["ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListServices"]
    resources = concat([var.ecs_cluster_arn], var.ecs_service_arns)
  }

  statement {
    sid       = "EcsDescribeTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadStateForPlan"
    actions   = ["s3:GetObject"]
    resources = [local.state_objects]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }
}

resource "aws_iam_role_policy" "ci" {
  name   = "ci-read-only"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}

# `terraform plan` on a pull request refreshes every managed resource, which takes read access
# to all of their types: the roots attach AWS's ReadOnlyAccess here. Plans never get write
# access, because a pull request can run arbitrary provider code during plan.
resource "aws_iam_role_policy_attachment" "ci_plan" {
  for_each = toset(var.ci_plan_policy_arns)

  role       = aws_iam_role.ci.name
  policy_arn = each.value
}

# --- CD: push images and roll out ----------------------------------------------------------

resource "aws_iam_role" "cd" {
  name                 = "${var.name_prefix}-github-cd"
  description          = "GitHub Actions CD of ${var.github_repository}: push images, deploy ECS services"
  assume_role_policy   = data.aws_iam_policy_document.trust["cd"].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "cd" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPushToProjectRepositories"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
      "ecr:DescribeRepositories",
    ]
    resources = var.ecr_repository_arns
  }

  statement {
    sid = "EcsTaskDefinitions"
    actions = [
      "ecs:RegisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "EcsDeployNamedServices"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = var.ecs_service_arns
  }

  statement {
    sid       = "EcsDescribeCluster"
    actions   = ["ecs:DescribeClusters", "ecs:ListTasks"]
    resources = [var.ecs_cluster_arn]
  }

  statement {
    sid       = "EcsDescribeTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${local.partition}:ecs:*:${local.account_id}:task/${var.ecs_cluster_name}/*"]
  }

  statement {
    sid       = "PassOnlyTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.passable_role_arns

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "cd" {
  name   = "cd-deploy"
  role   = aws_iam_role.cd.id
  policy = data.aws_iam_policy_document.cd.json
}

# --- Terraform: apply, from the protected `infrastructure` environment only -----------------

resource "aws_iam_role" "terraform" {
  name                 = "${var.name_prefix}-github-terraform"
  description          = "GitHub Actions terraform apply of ${var.github_repository} (environment ${var.terraform_environment})"
  assume_role_policy   = data.aws_iam_policy_document.trust["terraform"].json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "terraform" {
  for_each = toset(var.terraform_policy_arns)

  role       = aws_iam_role.terraform.name
  policy_arn = each.value
}

data "aws_iam_policy_document" "terraform" {
  #checkov:skip=CKV_AWS_356:IAM read calls (Get/List) and service-linked role creation are account-wide by nature.
  statement {
    sid       = "StateReadWrite"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.state_objects]
  }

  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  statement {
    sid       = "IamRead"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["*"]
  }

  statement {
    sid = "ManageProjectRolesAndPolicies"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
      "iam:UpdateAssumeRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:PutRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:AttachRolePolicy",
      "iam:DetachRolePolicy",
      "iam:PassRole",
      "iam:CreatePolicy",
      "iam:DeletePolicy",
      "iam:CreatePolicyVersion",
      "iam:DeletePolicyVersion",
      "iam:TagPolicy",
      "iam:UntagPolicy",
    ]
    resources = [
      "${local.iam_scope}:role/${var.managed_iam_name_prefix}*",
      "${local.iam_scope}:policy/${var.managed_iam_name_prefix}*",
    ]
  }

  statement {
    sid = "ManageGithubOidcProvider"
    actions = [
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
      "iam:AddClientIDToOpenIDConnectProvider",
      "iam:RemoveClientIDFromOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider",
    ]
    resources = ["${local.iam_scope}:oidc-provider/${local.oidc_host}"]
  }

  statement {
    sid       = "ServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values = [
        "ecs.amazonaws.com",
        "ecs.application-autoscaling.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "rds.amazonaws.com",
      ]
    }
  }
}

resource "aws_iam_role_policy" "terraform" {
  name   = "terraform-apply"
  role   = aws_iam_role.terraform.id
  policy = data.aws_iam_policy_document.terraform.json
}
