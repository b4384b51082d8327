# What the terraform roles need for the names and the in-VPC runner: ACM certificates validated
# through the platform's Route 53 zone (modules/dns: mlflow.<domain> here, api.<env>.<domain> in
# each environment root) and the CodeBuild runner project with its webhook and log group
# (modules/codebuild_runner). Kept next to the resources it serves; the rest of each role's
# policy is terraform_roles.tf. ACM assigns certificate IDs and RequestCertificate is
# wildcard-only in IAM, so certificates are scoped to the account and region.

locals {
  names = {
    certificates = "arn:${local.partition}:acm:${local.region}:${local.account_id}:certificate/*"
    zone         = var.route53_zone_id == null ? null : "arn:${local.partition}:route53:::hostedzone/${var.route53_zone_id}"
    changes      = "arn:${local.partition}:route53:::change/*"
    project      = "arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${var.codebuild_runner_project}"
    runner_logs  = "${local.arn.logs}:log-group:/codebuild/${var.codebuild_runner_project}*"
  }
  # Every root that names something: the platform (mlflow.<domain>) and each environment (its API).
  named_roots = var.route53_zone_id == null ? [] : local.roots
}

data "aws_iam_policy_document" "apply_names" {
  count = var.route53_zone_id == null ? 0 : 1

  statement {
    sid       = "RequestCertificates"
    actions   = ["acm:RequestCertificate"]
    resources = ["*"]
  }

  statement {
    sid = "OwnCertificates"
    actions = [
      "acm:DescribeCertificate",
      "acm:ListTagsForCertificate",
      "acm:DeleteCertificate",
      "acm:AddTagsToCertificate",
      "acm:RemoveTagsFromCertificate",
    ]
    resources = [local.names.certificates]
  }

  statement {
    sid       = "RecordsInThePlatformZone"
    actions   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetHostedZone"]
    resources = [local.names.zone]
  }

  statement {
    sid       = "RecordChanges"
    actions   = ["route53:GetChange"]
    resources = [local.names.changes]
  }
}

data "aws_iam_policy_document" "plan_names" {
  count = var.route53_zone_id == null ? 0 : 1

  statement {
    sid       = "OwnCertificates"
    actions   = ["acm:DescribeCertificate", "acm:ListTagsForCertificate"]
    resources = [local.names.certificates]
  }

  statement {
    sid       = "RecordsInThePlatformZone"
    actions   = ["route53:ListResourceRecordSets", "route53:GetHostedZone"]
    resources = [local.names.zone]
  }
}

resource "aws_iam_role_policy" "apply_names" {
  for_each = toset(local.named_roots)

  name   = "names-and-certificates"
  role   = module.role_terraform[each.key].name
  policy = data.aws_iam_policy_document.apply_names[0].json
}

resource "aws_iam_role_policy" "plan_names" {
  for_each = toset(local.named_roots)

  name   = "names-and-certificates"
  role   = module.role_plan[each.key].name
  policy = data.aws_iam_policy_document.plan_names[0].json
}

data "aws_iam_policy_document" "apply_runner" {
  statement {
    sid = "RunnerProjectAndWebhook"
    actions = [
      "codebuild:CreateProject",
      "codebuild:UpdateProject",
      "codebuild:DeleteProject",
      "codebuild:BatchGetProjects",
      "codebuild:CreateWebhook",
      "codebuild:UpdateWebhook",
      "codebuild:DeleteWebhook",
    ]
    resources = [local.names.project]
  }

  statement {
    sid = "RunnerLogGroup"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:PutRetentionPolicy",
      "logs:AssociateKmsKey",
      "logs:TagResource",
      "logs:ListTagsForResource",
    ]
    resources = [local.names.runner_logs]
  }

  statement {
    sid       = "PassTheRunnerRoleToCodeBuild"
    actions   = ["iam:PassRole"]
    resources = ["${local.iam_arn}:role/${substr(var.codebuild_runner_project, 0, 30)}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["codebuild.amazonaws.com"]
    }
  }

  # CodeBuild reads the GitHub connection on the project's behalf when it is created.
  statement {
    sid       = "UseTheGitHubConnection"
    actions   = ["codeconnections:UseConnection", "codeconnections:GetConnection", "codestar-connections:UseConnection", "codestar-connections:GetConnection"]
    resources = [coalesce(var.github_connection_arn, "arn:${local.partition}:codeconnections:${local.region}:${local.account_id}:connection/none")]
  }
}

data "aws_iam_policy_document" "plan_runner" {
  statement {
    sid       = "RunnerProject"
    actions   = ["codebuild:BatchGetProjects"]
    resources = [local.names.project]
  }

  statement {
    sid       = "RunnerLogGroup"
    actions   = ["logs:ListTagsForResource"]
    resources = [local.names.runner_logs]
  }
}

resource "aws_iam_role_policy" "apply_runner" {
  name   = "codebuild-runner"
  role   = module.role_terraform["platform"].name
  policy = data.aws_iam_policy_document.apply_runner.json
}

resource "aws_iam_role_policy" "plan_runner" {
  name   = "codebuild-runner"
  role   = module.role_plan["platform"].name
  policy = data.aws_iam_policy_document.plan_runner.json
}
