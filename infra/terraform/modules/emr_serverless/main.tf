# Where the Spark jobs run on AWS: an EMR Serverless application (Spark 3.5 on the emr-7.x line,
# the pyspark the `spark` extra pins), its job execution role, and the batch bucket whose
# prefixes the jobs read and write. No cluster to size or patch: the application starts on the
# first job, scales its workers to the job, stops when idle, and is paid per vCPU- and
# GB-second used.
#
#   s3://<bucket>/input/   the book to score, training snapshots (written by the data pipeline)
#   s3://<bucket>/output/  scores, rejects and summaries, one prefix per run (written by jobs)
#   s3://<bucket>/code/    the job entry point and the packed virtualenv (`spark.archives`)
#   s3://<bucket>/logs/    Spark driver and executor logs (the application's S3 log destination)
#
# The jobs run in the private subnets: the registry (MLflow behind its internal load balancer)
# and S3 (through the network's endpoints or NAT) are the only places they talk to. The role
# reads the registry's reader credentials from one Secrets Manager secret; it holds no access to
# MLflow's artefact bucket (artefacts come through the MLflow server, as for the API).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  bucket_name = coalesce(var.bucket_name, "${var.name}-${local.account_id}")
  bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
  log_group   = "/aws/emr-serverless/${var.name}"
  prefixes    = { input = "input/", output = "output/", code = "code/", logs = "logs/" }
}

# --- The application --------------------------------------------------------------------------

resource "aws_emrserverless_application" "this" {
  name          = var.name
  release_label = var.release_label
  type          = "SPARK"
  architecture  = var.architecture

  maximum_capacity {
    cpu    = "${var.max_vcpu} vCPU"
    memory = "${var.max_memory_gb} GB"
    disk   = "${var.max_disk_gb} GB"
  }

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.jobs.id]
  }

  tags = var.tags
}

resource "aws_security_group" "jobs" {
  #checkov:skip=CKV2_AWS_5:Attached to the EMR Serverless application's network_configuration, which checkov does not follow.
  name_prefix = "${var.name}-jobs-"
  description = "EMR Serverless Spark workers: HTTPS out to the VPC (registry, endpoints) and S3"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-jobs" })

  lifecycle {
    create_before_destroy = true
  }
}

#trivy:ignore:AVD-AWS-0104 Jobs call S3, Secrets Manager and CloudWatch Logs over HTTPS through the NAT gateway (egress_cidr_blocks narrows it where endpoints exist); their addresses are not fixed CIDRs.
resource "aws_vpc_security_group_egress_rule" "jobs_https" {
  for_each = toset(var.egress_cidr_blocks)

  security_group_id = aws_security_group.jobs.id
  description       = "HTTPS to the registry, S3 and the AWS APIs the job calls"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "jobs_registry" {
  for_each = toset([for p in var.registry_ports : tostring(p)])

  security_group_id = aws_security_group.jobs.id
  description       = "The registry's internal load balancer"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = var.vpc_cidr_block
}

# Spark's shuffle between the job's own workers.
resource "aws_vpc_security_group_ingress_rule" "jobs_self" {
  #checkov:skip=CKV_AWS_24:The source is this security group (one job's own workers), not 0.0.0.0/0; checkov reads a missing cidr_ipv4 as open.
  #checkov:skip=CKV_AWS_25:The source is this security group (one job's own workers), not 0.0.0.0/0; checkov reads a missing cidr_ipv4 as open.
  #checkov:skip=CKV_AWS_260:The source is this security group (one job's own workers), not 0.0.0.0/0; checkov reads a missing cidr_ipv4 as open.
  security_group_id            = aws_security_group.jobs.id
  description                  = "Spark driver and executors of one job"
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.jobs.id
}

resource "aws_vpc_security_group_egress_rule" "jobs_self" {
  security_group_id            = aws_security_group.jobs.id
  description                  = "Spark driver and executors of one job"
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.jobs.id
}

resource "aws_cloudwatch_log_group" "jobs" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- The batch bucket -------------------------------------------------------------------------

resource "aws_s3_bucket" "batch" {
  #checkov:skip=CKV_AWS_144:Inputs are copies of the data pipeline's snapshots and outputs are re-created by rerunning the job; versioning covers accidental deletes.
  #checkov:skip=CKV2_AWS_62:No consumer of bucket event notifications exists; the job that writes an output reports it.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "batch" {
  bucket = aws_s3_bucket.batch.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "batch" {
  bucket                  = aws_s3_bucket.batch.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "batch" {
  bucket = aws_s3_bucket.batch.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "batch" {
  bucket = aws_s3_bucket.batch.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "batch" {
  bucket = aws_s3_bucket.batch.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-job-logs"
    status = "Enabled"

    filter {
      prefix = local.prefixes.logs
    }

    expiration {
      days = var.log_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.batch]
}

resource "aws_s3_bucket_logging" "batch" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.batch.id
  target_bucket = var.access_log_bucket
  target_prefix = "${local.bucket_name}/"
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.batch.arn, "${aws_s3_bucket.batch.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "batch" {
  bucket = aws_s3_bucket.batch.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.batch]
}

# --- The job execution role -------------------------------------------------------------------

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    # Only jobs of this account's applications (confused-deputy protection).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "job" {
  name                 = "${var.name}-job"
  description          = "Execution role of the ${var.name} EMR Serverless jobs"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "job" {
  # Listing is limited to the four prefixes (Spark lists an input and an output's folder).
  statement {
    sid       = "ListJobPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.batch.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for p in values(local.prefixes) : [p, "${p}*"]])
    }
  }

  statement {
    sid       = "ReadInputsAndCode"
    actions   = ["s3:GetObject"]
    resources = [for p in ["input", "code", "output"] : "${aws_s3_bucket.batch.arn}/${local.prefixes[p]}*"]
  }

  # Outputs are written as temporary parts then committed (Spark's output committer deletes the
  # parts it no longer needs); logs are appended by EMR Serverless as the role.
  statement {
    sid = "WriteOutputsAndLogs"
    actions = [
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = [for p in ["output", "logs"] : "${aws_s3_bucket.batch.arn}/${local.prefixes[p]}*"]
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com", "secretsmanager.${data.aws_region.current.name}.amazonaws.com", "logs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  # The registry: MLflow's reader credentials (the job reads models through MLflow's HTTP API).
  statement {
    sid       = "RegistryCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.registry_secret_arns
  }

  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.jobs.arn, "${aws_cloudwatch_log_group.jobs.arn}:*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "batch-jobs"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}
