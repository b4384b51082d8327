# Spark on AWS (modules/emr_serverless): one EMR Serverless application for every environment's
# batch work, like the one registry: nightly scoring of the book with the production model and
# training on snapshots too large for one machine (docs/spark.md). Off until spark_enabled: a
# team that scores on one machine pays nothing for it.
#
# The jobs read the registry as their own MLflow user, whose credentials are the secret below
# (created empty; make tf-seed-secrets ROOT=platform gives it a value, the bootstrap creates the
# MLflow user from it).

resource "aws_secretsmanager_secret" "spark_registry" {
  count = var.spark_enabled ? 1 : 0
  #checkov:skip=CKV2_AWS_57:MLflow user passwords are changed through MLflow's update-password API, which a Secrets Manager rotation lambda cannot reach from here; rotate by re-seeding (README).
  name_prefix             = "${var.project}-batch/mlflow-reader-"
  description             = "MLflow user (username, password) the EMR Serverless jobs read the registry with"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

module "spark" {
  count  = var.spark_enabled ? 1 : 0
  source = "../modules/emr_serverless"

  name                 = "${var.project}-batch"
  release_label        = var.spark_release_label
  architecture         = var.spark_architecture
  max_vcpu             = var.spark_max_vcpu
  max_memory_gb        = var.spark_max_vcpu * 4
  idle_timeout_minutes = var.spark_idle_timeout_minutes
  vpc_id               = module.network.vpc_id
  vpc_cidr_block       = module.network.vpc_cidr_block
  subnet_ids           = module.network.private_subnet_ids
  registry_secret_arns = [aws_secretsmanager_secret.spark_registry[0].arn]
  kms_key_arn          = module.kms.key_arn
  force_destroy        = !var.deletion_protection
}

# What the platform's terraform role needs to build it, and its plan role to read it (the rest of
# each role's policy is terraform_roles.tf). EMR Serverless assigns application IDs, so the
# application is scoped to the account's applications; everything else by name.
locals {
  spark = {
    name         = "${var.project}-batch"
    applications = "arn:${local.partition}:emr-serverless:${local.region}:${local.account_id}:/applications/*"
    bucket       = "arn:${local.partition}:s3:::${var.project}-batch-${local.account_id}"
    role         = "${local.iam_arn}:role/${var.project}-batch-job"
    logs         = "${local.arn.logs}:log-group:/aws/emr-serverless/${var.project}-batch*"
    secret       = "${local.arn.secretsmanager}:secret:${var.project}-batch/*"
  }
}

data "aws_iam_policy_document" "apply_spark" {
  statement {
    sid = "Application"
    actions = [
      "emr-serverless:CreateApplication",
      "emr-serverless:GetApplication",
      "emr-serverless:UpdateApplication",
      "emr-serverless:DeleteApplication",
      "emr-serverless:StopApplication",
      "emr-serverless:TagResource",
      "emr-serverless:UntagResource",
      "emr-serverless:ListTagsForResource",
    ]
    resources = [local.spark.applications]
  }

  # EMR Serverless creates its service-linked role on the first application.
  statement {
    sid       = "ServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.iam_arn}:role/aws-service-role/ops.emr-serverless.amazonaws.com/*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["ops.emr-serverless.amazonaws.com"]
    }
  }

  statement {
    sid = "JobRole"
    actions = [
      "iam:CreateRole",
      "iam:GetRole",
      "iam:DeleteRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:PutRolePolicy",
      "iam:GetRolePolicy",
      "iam:DeleteRolePolicy",
      "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
    ]
    resources = [local.spark.role]
  }

  statement {
    sid       = "BatchBucket"
    actions   = ["s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:Get*", "s3:Put*", "s3:DeleteBucketPolicy"]
    resources = [local.spark.bucket]
  }

  statement {
    sid = "JobLogGroup"
    actions = [
      "logs:CreateLogGroup",
      "logs:DeleteLogGroup",
      "logs:PutRetentionPolicy",
      "logs:AssociateKmsKey",
      "logs:TagResource",
      "logs:ListTagsForResource",
    ]
    resources = [local.spark.logs]
  }

  statement {
    sid = "RegistrySecret"
    actions = [
      "secretsmanager:CreateSecret",
      "secretsmanager:DeleteSecret",
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:TagResource",
    ]
    resources = [local.spark.secret]
  }
}

data "aws_iam_policy_document" "plan_spark" {
  statement {
    sid       = "Application"
    actions   = ["emr-serverless:GetApplication", "emr-serverless:ListTagsForResource"]
    resources = [local.spark.applications]
  }

  statement {
    sid       = "JobRole"
    actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"]
    resources = [local.spark.role]
  }

  statement {
    sid       = "BatchBucket"
    actions   = ["s3:ListBucket", "s3:Get*"]
    resources = [local.spark.bucket]
  }

  statement {
    sid       = "JobLogGroup"
    actions   = ["logs:ListTagsForResource"]
    resources = [local.spark.logs]
  }

  statement {
    sid       = "RegistrySecret"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"]
    resources = [local.spark.secret]
  }
}

resource "aws_iam_role_policy" "apply_spark" {
  count = var.spark_enabled ? 1 : 0

  name   = "emr-serverless"
  role   = module.role_terraform["platform"].name
  policy = data.aws_iam_policy_document.apply_spark.json
}

resource "aws_iam_role_policy" "plan_spark" {
  count = var.spark_enabled ? 1 : 0

  name   = "emr-serverless"
  role   = module.role_plan["platform"].name
  policy = data.aws_iam_policy_document.plan_spark.json
}
