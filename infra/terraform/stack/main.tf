# One root for every environment (envs/<env>.tfvars says which one, and its state key is
# credit-risk/<env>/terraform.tfstate): the environment's ECS cluster and prediction API, their
# roles, the environment's deploy role and the API's secrets. Everything shared (network, key,
# image registry, the one MLflow, the OIDC provider) belongs to ../platform, applied first;
# this root reads it from the platform's SSM parameter, never from the platform's state.

locals {
  name = "${var.project}-${var.environment}"
  # ALBRequestCountPerTarget is per minute: measured req/s per vCPU x vCPUs x headroom x 60.
  api_requests_per_target = floor(
    var.api_requests_per_second_per_vcpu * (var.api_cpu / 1024) * var.api_scaling_headroom * 60
  )
}

# The platform's published outputs (platform/main.tf, aws_ssm_parameter.outputs). A parameter
# rather than terraform_remote_state: the environment's plan and apply roles then need
# ssm:GetParameter on one non-secret document, not s3:GetObject on the platform's state, so
# state access stays one key per root; and rather than copied variables, so a platform change
# reaches the environments without a hand-edited tfvars file.
data "aws_ssm_parameter" "platform" {
  name = "/${var.project}/platform/outputs"
}

locals {
  platform = jsondecode(data.aws_ssm_parameter.platform.insecure_value)
}

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  lifecycle {
    precondition {
      condition     = try(local.platform.schema_version, 0) == 1
      error_message = "The platform parameter /${var.project}/platform/outputs is not schema_version 1: apply ../platform first (README, apply order)."
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- The API's secrets (values never pass through terraform) ----------------------------------

# Created empty; scripts/seed_secrets.py (make tf-seed-secrets ROOT=<env>) generates the value
# once, so neither the state nor any plan role ever holds it. The bootstrap copies the token into
# the GitHub environment's SERVICE_API_TOKEN and creates the MLflow reader user from the
# credentials secret.
resource "aws_secretsmanager_secret" "api_token" {
  #checkov:skip=CKV2_AWS_57:The bearer token is rotated by re-seeding and redeploying (README); a rotation lambda would have to update GitHub's SERVICE_API_TOKEN too.
  name_prefix             = "${local.name}/api-token-"
  description             = "Bearer token of the ${var.environment} prediction API (JSON key token)"
  kms_key_id              = local.platform.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "mlflow_reader" {
  #checkov:skip=CKV2_AWS_57:MLflow user passwords are changed through MLflow's update-password API, which a Secrets Manager rotation lambda cannot reach from here; rotate by re-seeding (README).
  name_prefix             = "${local.name}/mlflow-reader-"
  description             = "MLflow basic-auth user (username, password) the ${var.environment} API reads the registry with"
  kms_key_id              = local.platform.kms_key_arn
  recovery_window_in_days = 7
}

# The online feature store's Redis AUTH token. Created (and seeded, make tf-seed-secrets) with the
# others whether or not the store exists: the store reads it when feature_store_enabled turns on,
# so it must hold a value by then.
resource "aws_secretsmanager_secret" "feature_store_token" {
  #checkov:skip=CKV2_AWS_57:Rotated with ElastiCache's ROTATE strategy (set the new token, redeploy the API, then SET), which a rotation lambda cannot sequence with the ECS rollout.
  name_prefix             = "${local.name}/feature-store-token-"
  description             = "AUTH token (JSON key token) of the ${var.environment} online feature store (Redis)"
  kms_key_id              = local.platform.kms_key_arn
  recovery_window_in_days = 7
}

locals {
  feature_store_secrets = var.feature_store_enabled ? {
    SERVE_FEATURES_REDIS_AUTH_TOKEN = "${aws_secretsmanager_secret.feature_store_token.arn}:token::"
  } : {}
  feature_store_environment = var.feature_store_enabled ? {
    SERVE_FEATURES_REDIS_URL = module.feature_store[0].url
  } : {}
}

# --- The prediction API -----------------------------------------------------------------------

module "api" {
  source = "../modules/ecs_service"

  name         = "${local.name}-api"
  cluster_arn  = aws_ecs_cluster.this.arn
  cluster_name = aws_ecs_cluster.this.name
  vpc_id       = local.platform.vpc_id
  # Public and HTTPS under api.<environment>.<domain> (dns.tf); without a domain (staging only)
  # internal and HTTP: plain HTTP never leaves the VPC.
  internal        = local.api_hostname == null
  alb_subnet_ids  = local.api_hostname == null ? local.platform.private_subnet_ids : local.platform.public_subnet_ids
  task_subnet_ids = local.platform.private_subnet_ids

  ingress_cidr_blocks  = local.api_hostname == null ? [local.platform.vpc_cidr_block] : var.api_allowed_cidr_blocks
  https                = local.api_hostname != null
  certificate_arn      = one(module.api_name[*].certificate_arn)
  deletion_protection  = var.deletion_protection
  permissions_boundary = local.platform.permissions_boundary_arn[var.environment]

  container_image     = var.api_image
  container_port      = 8000
  ecr_repository_arns = [local.platform.ecr_serve_repository_arn]
  health_check_path   = "/ready"

  environment = merge(var.api_environment, {
    SERVE_ENVIRONMENT   = var.environment
    MLFLOW_TRACKING_URI = local.platform.mlflow_tracking_uri
    SERVE_MODEL_NAME    = var.model_name
    SERVE_MODEL_ALIAS   = var.environment
  }, local.feature_store_environment)
  secrets = merge({
    SERVE_API_TOKEN          = "${aws_secretsmanager_secret.api_token.arn}:token::"
    MLFLOW_TRACKING_USERNAME = "${aws_secretsmanager_secret.mlflow_reader.arn}:username::"
    MLFLOW_TRACKING_PASSWORD = "${aws_secretsmanager_secret.mlflow_reader.arn}:password::"
  }, local.feature_store_secrets)
  secret_arns = concat(
    [aws_secretsmanager_secret.api_token.arn, aws_secretsmanager_secret.mlflow_reader.arn],
    var.feature_store_enabled ? [aws_secretsmanager_secret.feature_store_token.arn] : [],
  )
  decrypt_kms_key_arns = [local.platform.kms_key_arn]
  # No task role policy: the API reads models through MLflow's HTTP API (artifacts are proxied by
  # the server), so it holds no S3 access to the artifact bucket.

  cpu           = var.api_cpu
  memory        = var.api_memory
  desired_count = var.api_min_capacity # at creation only: autoscaling owns it afterwards
  min_capacity  = var.api_min_capacity
  max_capacity  = var.api_max_capacity
  # The measured per-task capacity x headroom, per minute (variables.tf, docs/deploy.md).
  requests_per_target       = local.api_requests_per_target
  scale_in_cooldown_seconds = var.api_scale_in_cooldown_seconds

  kms_key_arn = local.platform.kms_key_arn
}

check "api_service_runs" {
  assert {
    condition     = var.api_image != null
    error_message = "The ${var.environment} API service is not created yet: set api_image in envs/${var.environment}.tfvars to the first release's serve image (README, bootstrap step 5)."
  }
}

# --- The online feature store (POST /predict/by-id) -------------------------------------------

module "feature_store" {
  source = "../modules/feature_store"
  count  = var.feature_store_enabled ? 1 : 0

  name                      = "${local.name}-features"
  vpc_id                    = local.platform.vpc_id
  subnet_ids                = local.platform.private_subnet_ids
  client_security_group_ids = [module.api.task_security_group_id]
  auth_token_secret_arn     = aws_secretsmanager_secret.feature_store_token.arn
  kms_key_arn               = local.platform.kms_key_arn
  node_type                 = var.feature_store_node_type
  replicas                  = var.feature_store_replicas
}
