# --- DVC remote: the data of the training pipeline (dvc.yaml, docs/data.md) -----------------------
#
# A prefix of the platform bucket (the MLflow artifact bucket): encrypted at rest with the
# platform KMS key by the bucket's default encryption, TLS-only and versioned by its policy and
# configuration (modules/mlflow), so the data inherits what the models already have. The repository
# commits the URL (`dvc_remote_url` below) in .dvc/config; credentials come from the job's OIDC
# role, never from the config.
#
# Who may use it: the retrain role reads and writes (dvc pull, dvc push of new pipeline data);
# the roles listed in dvc_remote_readers (e.g. a CI role that runs the data-in-remote gate, or a
# model-risk reviewer rebuilding a version) only read. DVC lists the prefix to find what is
# missing (`dvc push`/`status -c`), so s3:ListBucket is granted on the prefix alone.
#
# The data-in-remote gate runs where promotions are checked and applied: CI's promotions job (on
# the CodeBuild runner, with the runner's role) and `mlops deploy` (each environment's deploy
# role, stack/iam.tf, within the boundary of iam.tf). Those identities get `dvc_exists` only:
# HeadObject (s3:GetObject) on the prefix's objects and ListBucket on the prefix, so a missing
# object is a 404, not a 403, and no kms:Decrypt: the objects are SSE-KMS with the platform key,
# so they can tell that an object exists and its size, never read the data (docs/data.md).

locals {
  dvc_prefix     = trim(var.dvc_remote_prefix, "/")
  dvc_bucket_arn = module.mlflow.artifact_bucket_arn
  dvc_objects    = "${module.mlflow.artifact_bucket_arn}/${local.dvc_prefix}/*"
}

# Read = check that objects exist (dvc_exists below) + decrypt them.
data "aws_iam_policy_document" "dvc_read" {
  source_policy_documents = [data.aws_iam_policy_document.dvc_exists.json]

  statement {
    sid       = "DecryptDvcObjects"
    actions   = ["kms:Decrypt"]
    resources = [module.kms.key_arn]
  }
}

data "aws_iam_policy_document" "dvc_exists" {
  statement {
    sid       = "ListDvcPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.dvc_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.dvc_prefix}/*", local.dvc_prefix]
    }
  }

  statement {
    sid       = "HeadDvcObjects"
    actions   = ["s3:GetObject"]
    resources = [local.dvc_objects]
  }
}

data "aws_iam_policy_document" "dvc_write" {
  source_policy_documents = [data.aws_iam_policy_document.dvc_read.json]

  statement {
    sid       = "WriteDvcObjects"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [local.dvc_objects]
  }

  statement {
    sid       = "EncryptDvcObjects"
    actions   = ["kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }
}

resource "aws_iam_role_policy" "dvc_train" {
  name   = "dvc-remote-read-write"
  role   = module.role_train.name
  policy = data.aws_iam_policy_document.dvc_write.json
}

resource "aws_iam_role_policy" "dvc_readers" {
  for_each = toset(var.dvc_remote_readers)

  name   = "dvc-remote-read"
  role   = each.value
  policy = data.aws_iam_policy_document.dvc_read.json
}

# CI's promotions job runs the data-in-remote gate on the CodeBuild runner, with its role.
resource "aws_iam_role_policy" "dvc_runner" {
  count = length(module.codebuild_runner)

  name   = "dvc-remote-exists"
  role   = module.codebuild_runner[0].role_name
  policy = data.aws_iam_policy_document.dvc_exists.json
}

variable "dvc_remote_prefix" {
  description = "Prefix of the platform bucket that holds the DVC remote (.dvc/config's url is s3://<bucket>/<prefix>)."
  type        = string
  default     = "dvc"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9/_-]*$", trim(var.dvc_remote_prefix, "/")))
    error_message = "dvc_remote_prefix: lower-case letters, digits, '/', '_' and '-' only."
  }
}

variable "dvc_remote_readers" {
  description = "Names of IAM roles that may read (never write) the DVC remote, e.g. the role of a job that runs the data-in-remote gate."
  type        = list(string)
  default     = []
}

output "dvc_remote_url" {
  description = "URL of the DVC remote: the `url` of remote \"platform\" in .dvc/config."
  value       = "s3://${module.mlflow.artifact_bucket_name}/${local.dvc_prefix}"
}
