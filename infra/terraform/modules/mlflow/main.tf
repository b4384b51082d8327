# The MLflow tracking server and model registry, once for all environments (the platform root):
#   - PostgreSQL on RDS (encrypted, private, backed up) as the backend store; its master
#     password is generated and kept in Secrets Manager by RDS (manage_master_user_password),
#     so no password ever passes through terraform variables or state;
#   - a versioned, encrypted, private, TLS-only S3 bucket as the artifact store;
#   - `mlflow server --app-name basic-auth --serve-artifacts` on ECS Fargate
#     (modules/ecs_service): every client authenticates (MLflow's basic-auth app), and clients
#     reach artifacts only through the server, so no client role holds S3 access to the models;
#   - the auth app's admin credentials and Flask secret key in a Secrets Manager secret that this
#     module creates empty: its value is generated once by scripts/seed_secrets.py (never by
#     terraform, so neither the state nor a plan role ever sees it), and ECS injects it.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id    = data.aws_caller_identity.current.account_id
  bucket_name   = coalesce(var.artifact_bucket_name, "${var.name}-artifacts-${local.account_id}")
  artifact_root = "s3://${aws_s3_bucket.artifacts.bucket}/artifacts"
  db_secret_arn = aws_db_instance.this.master_user_secret[0].secret_arn
  auth_ini      = "/tmp/mlflow-auth/basic_auth.ini"

  # Build the backend URI at start from the secret that ECS injects (by ARN and JSON key, so a
  # task started after a rotation reads the new password: rotation.tf); the password is
  # percent-encoded because RDS-generated passwords may hold URL-reserved characters. The auth
  # app keeps its users in the same database (its own tables and alembic_version_auth); its
  # database_uri can only come from the ini file, which is written 0600 to the task's scratch
  # space. The admin user is created from MLFLOW_AUTH_ADMIN_USERNAME/PASSWORD on first start.
  server_script = <<-EOT
    set -eu
    umask 077
    creds=$(python -c 'import os, urllib.parse as u; print(u.quote(os.environ["DB_USER"], safe="") + ":" + u.quote(os.environ["DB_PASSWORD"], safe=""))')
    export MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://$${creds}@$${DB_HOST}:$${DB_PORT}/$${DB_NAME}?sslmode=require"
    # One-off task of a deploy (`mlops db-upgrade`): migrate the schema, then stop.
    if [ "$${MLFLOW_ONE_OFF:-}" = db-upgrade ]; then unset DB_PASSWORD creds; exec mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"; fi
    mkdir -p "$(dirname ${local.auth_ini})"
    printf '[mlflow]\ndefault_permission = ${var.auth_default_permission}\ndatabase_uri = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n' \
      "$(printf '%s' "$MLFLOW_BACKEND_STORE_URI" | sed 's/%/%%/g')" > ${local.auth_ini}
    export MLFLOW_AUTH_CONFIG_PATH=${local.auth_ini}
    unset DB_PASSWORD creds
    exec mlflow server --app-name basic-auth --host 0.0.0.0 --port ${var.container_port} --serve-artifacts --workers ${var.workers}
  EOT
}

# --- Auth app credentials ------------------------------------------------------------------

resource "aws_secretsmanager_secret" "admin" {
  #checkov:skip=CKV2_AWS_57:The admin password of MLflow's auth app is rotated through MLflow's update-password API (a Secrets Manager rotation lambda cannot reach MLflow's user store); see infra/terraform/README.md.
  name_prefix             = "${var.name}/admin-"
  description             = "MLflow basic-auth admin (username, password) and Flask secret key (flask_secret_key); value set once by scripts/seed_secrets.py"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

# --- Artifact bucket -----------------------------------------------------------------------

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage for artifacts that can be re-created by retraining; versioning covers accidental deletes.
  #checkov:skip=CKV2_AWS_62:No consumer of bucket event notifications exists; MLflow tracks artifacts itself.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_s3_bucket_logging" "artifacts" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.artifacts.id
  target_bucket = var.access_log_bucket
  target_prefix = "${local.bucket_name}/"
}

data "aws_iam_policy_document" "artifacts_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]

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

  statement {
    sid       = "DenyOldTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  policy = data.aws_iam_policy_document.artifacts_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

# --- Database ------------------------------------------------------------------------------

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.name}-"
  description = "Private subnets of the MLflow database"
  subnet_ids  = var.private_subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "db" {
  name_prefix = "${var.name}-db-"
  description = "MLflow PostgreSQL: reachable from the MLflow tasks only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-db" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "db_from_server" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the MLflow server tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = module.server.task_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "server_to_db" {
  security_group_id            = module.server.task_security_group_id
  description                  = "PostgreSQL to the MLflow database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg${var.postgres_major_version}-"
  family      = "postgres${var.postgres_major_version}"
  description = "MLflow PostgreSQL: TLS only, DDL and slow-query logging"
  tags        = var.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name_prefix        = "${substr(var.name, 0, 24)}-rdsmon-"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.postgres_major_version
  instance_class = var.db_instance_class
  db_name        = "mlflow"
  username       = "mlflow"
  port           = 5432

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  apply_immediately                   = false

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7

  tags = var.tags
}

# --- Server --------------------------------------------------------------------------------

# The server's task role is the only identity with access to the model files: it proxies every
# client's reads (serving, promotion gates) and writes (training) behind MLflow's auth.
data "aws_iam_policy_document" "artifacts_access" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["artifacts", "artifacts/*"]
    }
  }

  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/artifacts/*"]
  }

  statement {
    sid       = "UseBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

module "server" {
  source = "../ecs_service"

  name                 = var.name
  cluster_arn          = var.cluster_arn
  cluster_name         = var.cluster_name
  vpc_id               = var.vpc_id
  alb_subnet_ids       = var.public_endpoint ? var.public_subnet_ids : var.private_subnet_ids
  permissions_boundary = var.permissions_boundary
  task_subnet_ids      = var.private_subnet_ids
  internal             = !var.public_endpoint

  ingress_cidr_blocks        = var.allowed_cidr_blocks
  ingress_security_group_ids = var.allowed_security_group_ids
  https                      = var.https
  certificate_arn            = var.certificate_arn
  deletion_protection        = var.deletion_protection

  container_image = var.container_image
  container_port  = var.container_port
  container_user  = var.container_user
  command         = ["/bin/sh", "-c", local.server_script]
  cpu             = var.cpu
  memory          = var.memory

  environment = {
    DB_HOST                      = aws_db_instance.this.address
    DB_PORT                      = tostring(aws_db_instance.this.port)
    DB_NAME                      = aws_db_instance.this.db_name
    MLFLOW_ARTIFACTS_DESTINATION = local.artifact_root
    # Host-header check of mlflow server (DNS-rebinding protection): the ALB's name and any alias.
    MLFLOW_SERVER_ALLOWED_HOSTS = join(",", compact(concat([module.server.alb_dns_name], var.extra_allowed_hosts)))
    # GenAI job workers: unused by a registry, and their polling of the store slows every call.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION = "false"
    AWS_DEFAULT_REGION                 = data.aws_region.current.name
    HOME                               = "/tmp"
  }

  secrets = {
    DB_USER                        = "${local.db_secret_arn}:username::"
    DB_PASSWORD                    = "${local.db_secret_arn}:password::"
    MLFLOW_AUTH_ADMIN_USERNAME     = "${aws_secretsmanager_secret.admin.arn}:username::"
    MLFLOW_AUTH_ADMIN_PASSWORD     = "${aws_secretsmanager_secret.admin.arn}:password::"
    MLFLOW_FLASK_SERVER_SECRET_KEY = "${aws_secretsmanager_secret.admin.arn}:flask_secret_key::"
  }
  secret_arns          = [local.db_secret_arn, aws_secretsmanager_secret.admin.arn]
  decrypt_kms_key_arns = [var.kms_key_arn]
  ecr_repository_arns  = var.ecr_repository_arns
  task_role_policies   = { "mlflow-artifacts" = data.aws_iam_policy_document.artifacts_access.json }

  desired_count       = var.desired_count
  min_capacity        = var.desired_count
  max_capacity        = var.max_capacity
  requests_per_target = 0
  health_check_path   = "/health"

  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  tags               = var.tags
}
