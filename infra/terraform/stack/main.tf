# One root for every environment; envs/<env>.tfvars says which one and how it differs.
locals {
  name = "${var.project}-${var.environment}"
}

module "kms" {
  source = "../modules/kms"

  name = local.name
}

module "network" {
  source = "../modules/network"

  name               = local.name
  cidr_block         = var.vpc_cidr_block
  enable_nat_gateway = true
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.kms.key_arn
}

module "ecr_api" {
  source = "../modules/ecr"

  name        = "${local.name}/api"
  kms_key_arn = module.kms.key_arn
}

module "ecr_mlflow" {
  source = "../modules/ecr"

  name        = "${local.name}/mlflow"
  kms_key_arn = module.kms.key_arn
}

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
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

module "mlflow" {
  source = "../modules/mlflow"

  name               = "${local.name}-mlflow"
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  cluster_arn        = aws_ecs_cluster.this.arn
  cluster_name       = aws_ecs_cluster.this.name
  kms_key_arn        = module.kms.key_arn

  container_image     = "${module.ecr_mlflow.repository_url}:${var.initial_image_tag}"
  ecr_repository_arns = [module.ecr_mlflow.repository_arn]

  public_endpoint            = var.mlflow_public_endpoint
  certificate_arn            = var.mlflow_certificate_arn
  allowed_cidr_blocks        = concat([module.network.vpc_cidr_block], var.mlflow_allowed_cidr_blocks)
  allowed_security_group_ids = [module.api.task_security_group_id]
  extra_allowed_hosts        = var.mlflow_extra_allowed_hosts

  db_instance_class   = var.mlflow_db_instance_class
  db_multi_az         = var.mlflow_db_multi_az
  deletion_protection = var.deletion_protection
}

module "api" {
  source = "../modules/ecs_service"

  name            = "${local.name}-api"
  cluster_arn     = aws_ecs_cluster.this.arn
  cluster_name    = aws_ecs_cluster.this.name
  vpc_id          = module.network.vpc_id
  alb_subnet_ids  = module.network.public_subnet_ids
  task_subnet_ids = module.network.private_subnet_ids

  ingress_cidr_blocks = var.api_allowed_cidr_blocks
  certificate_arn     = var.api_certificate_arn
  deletion_protection = var.deletion_protection

  container_image     = "${module.ecr_api.repository_url}:${var.initial_image_tag}"
  container_port      = 8000
  ecr_repository_arns = [module.ecr_api.repository_arn]
  health_check_path   = "/ready"

  environment = merge({
    MLFLOW_TRACKING_URI = module.mlflow.tracking_uri
    SERVE_MODEL_NAME    = var.project
    SERVE_MODEL_ALIAS   = var.environment
  }, var.api_environment)

  cpu           = var.api_cpu
  memory        = var.api_memory
  desired_count = var.api_min_capacity
  min_capacity  = var.api_min_capacity
  max_capacity  = var.api_max_capacity

  kms_key_arn = module.kms.key_arn
}

module "github_oidc" {
  source = "../modules/github_oidc"

  name_prefix          = local.name
  github_repository    = var.github_repository
  create_oidc_provider = var.create_oidc_provider
  oidc_provider_arn    = var.oidc_provider_arn
  cd_environments      = [var.environment]

  ecr_repository_arns = [module.ecr_api.repository_arn, module.ecr_mlflow.repository_arn]
  ecs_cluster_arn     = aws_ecs_cluster.this.arn
  ecs_cluster_name    = aws_ecs_cluster.this.name
  ecs_service_arns    = [module.api.service_arn, module.mlflow.service_arn]
  passable_role_arns = [
    module.api.task_role_arn,
    module.api.execution_role_arn,
    module.mlflow.task_role_arn,
    module.mlflow.execution_role_arn,
  ]

  state_bucket_name       = var.state_bucket_name
  state_key_prefix        = "${var.project}/"
  ci_plan_policy_arns     = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
  terraform_policy_arns   = ["arn:aws:iam::aws:policy/PowerUserAccess"]
  managed_iam_name_prefix = local.name
}

# Plain HTTP is fine for a first bootstrap and for staging, never for production traffic:
# production plans warn until a certificate is configured.
check "api_serves_https" {
  assert {
    condition     = var.environment != "production" || var.api_certificate_arn != null
    error_message = "Production serves the API over plain HTTP: set api_certificate_arn (an ACM certificate) to get an HTTPS listener."
  }
}
