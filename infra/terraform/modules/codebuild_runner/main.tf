# GitHub Actions runners hosted by AWS CodeBuild, inside the platform VPC: the jobs that talk to
# the private MLflow registry or to an internal API run here (config/platform.yaml `runners`).
# A job asks for one with
#   runs-on: codebuild-<project name>-${{ github.run_id }}-${{ github.run_attempt }}
# GitHub sends a workflow_job event to the webhook below; CodeBuild starts a build in the private
# subnets that registers an ephemeral runner for that one job and ends with it.
#
# The build's own role can only do what a runner needs (logs, its network interfaces, the GitHub
# connection's token): every job still assumes its own role through OIDC, and a step could read
# the build's credentials, so they must open nothing else.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  log_group  = "/codebuild/${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- Network: no ingress; HTTPS out (GitHub, AWS APIs through the NAT) and into the VPC --------

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "CodeBuild-hosted GitHub Actions runners: no ingress; HTTPS out"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

#trivy:ignore:AVD-AWS-0104 A runner reaches GitHub (actions, checkout, its job queue), package registries and AWS APIs, whose addresses are not fixed; HTTPS only.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS: GitHub, package registries, AWS APIs (through the NAT), the VPC's load balancers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "dns" {
  for_each = toset(["udp", "tcp"])

  security_group_id = aws_security_group.this.id
  description       = "DNS to the VPC resolver"
  ip_protocol       = each.value
  from_port         = 53
  to_port           = 53
  cidr_ipv4         = var.vpc_cidr_block
}

# --- The build's role ------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    # Only this account's project of this name may use the role (confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:codebuild:${local.region}:${local.account_id}:project/${var.name}"]
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix          = "${substr(var.name, 0, 30)}-"
  description          = "CodeBuild-hosted GitHub Actions runner ${var.name}: logs, VPC interfaces, GitHub connection only"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "runner" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # CodeBuild creates the build's interface in a private subnet; these describe calls take no
  # resource-level permissions (AWS: "CodeBuild in a VPC", service role policy).
  statement {
    sid = "DescribeNetwork"
    actions = [
      "ec2:DescribeDhcpOptions",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "BuildInterfaces"
    actions   = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${var.vpc_id}"]
    }
  }

  statement {
    sid       = "InterfaceInPrivateSubnetsForCodeBuildOnly"
    actions   = ["ec2:CreateNetworkInterfacePermission"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:Subnet"
      values   = [for s in var.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${s}"]
    }

    condition {
      test     = "StringEquals"
      variable = "ec2:AuthorizedService"
      values   = ["codebuild.amazonaws.com"]
    }
  }

  statement {
    sid       = "GitHubConnectionToken"
    actions   = ["codeconnections:GetConnectionToken", "codeconnections:GetConnection", "codestar-connections:GetConnectionToken", "codestar-connections:GetConnection"]
    resources = [var.github_connection_arn]
  }

  statement {
    sid       = "EncryptedLogsAndCache"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "runner"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runner.json
}

# --- The project and the webhook -------------------------------------------------------------

resource "aws_codebuild_project" "this" {
  #checkov:skip=CKV_AWS_316:The release job builds the images with docker inside the runner, which needs privileged mode; each build is one job of this repository's main-only workflows, and the build's role opens nothing but its logs, interfaces and the GitHub connection.
  name           = var.name
  description    = "GitHub Actions runners for ${var.github_repository} in the platform VPC (jobs that talk to the private registry)"
  service_role   = aws_iam_role.this.arn
  encryption_key = var.kms_key_arn
  build_timeout  = var.build_timeout_minutes
  # One build per queued job; more jobs than this wait in CodeBuild's queue.
  concurrent_build_limit = var.concurrent_builds
  queued_timeout         = 60
  tags                   = var.tags

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type         = "LINUX_CONTAINER"
    compute_type = var.compute_type
    image        = var.image
    # The release job builds and pushes the images with docker inside the build.
    privileged_mode             = true
    image_pull_credentials_type = "CODEBUILD"
  }

  # The runner registers against this repository through the AWS CodeConnections connection (a
  # GitHub App a person authorises once in the console); no token passes through terraform.
  source {
    type            = "GITHUB"
    location        = "https://github.com/${var.github_repository}.git"
    git_clone_depth = 1
    # A runner project's buildspec is replaced by the runner; this one is never used.
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo runner project\n"

    auth {
      type     = "CODECONNECTIONS"
      resource = var.github_connection_arn
    }
  }

  vpc_config {
    vpc_id             = var.vpc_id
    subnets            = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  logs_config {
    cloudwatch_logs {
      status     = "ENABLED"
      group_name = aws_cloudwatch_log_group.this.name
    }

    s3_logs {
      status = "DISABLED"
    }
  }

  depends_on = [aws_iam_role_policy.this]
}

# GitHub calls this for every queued workflow job of the repository; CodeBuild starts a build
# only for jobs whose runs-on names this project (codebuild-<name>-...), so the other jobs stay
# on GitHub's runners.
resource "aws_codebuild_webhook" "this" {
  project_name = aws_codebuild_project.this.name
  build_type   = "BUILD"

  filter_group {
    filter {
      type    = "EVENT"
      pattern = "WORKFLOW_JOB_QUEUED"
    }
  }
}
