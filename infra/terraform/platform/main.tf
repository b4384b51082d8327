# What every environment shares, applied first and once per account: the key, the network, the
# image registry, the GitHub OIDC provider and its roles, and the ONE MLflow registry whose
# `staging` / `production` aliases are the contract between environments. The per-environment
# roots (../stack) read what they need from the SSM parameter at the end of this file.

locals {
  name  = "${var.project}-platform"
  roots = concat(["platform"], var.environments)
  # Resource names the environment roots use: every name starts with <project>-<env>.
  env_prefix = { for e in var.environments : e => "${var.project}-${e}" }
}

module "kms" {
  source = "../modules/kms"

  name        = local.name
  description = "Encrypts logs, artifacts, the database, secrets and images of ${var.project} (all environments)"
}

module "network" {
  source = "../modules/network"

  name               = local.name
  cidr_block         = var.vpc_cidr_block
  enable_nat_gateway = true
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.kms.key_arn
}

# One repository per image, shared by every environment: staging and production run the digest
# CD pushed once, never a rebuild.
module "ecr_serve" {
  source = "../modules/ecr"

  name        = "${var.project}/serve"
  kms_key_arn = module.kms.key_arn
}

module "ecr_mlflow" {
  source = "../modules/ecr"

  name        = "${var.project}/mlflow"
  kms_key_arn = module.kms.key_arn
}

# MLflow gets its own cluster: an environment's apply or destroy never touches the registry.
resource "aws_ecs_cluster" "platform" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "platform" {
  cluster_name       = aws_ecs_cluster.platform.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

module "mlflow" {
  source = "../modules/mlflow"

  name               = "${var.project}-mlflow"
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  cluster_arn        = aws_ecs_cluster.platform.arn
  cluster_name       = aws_ecs_cluster.platform.name
  kms_key_arn        = module.kms.key_arn

  container_image     = var.mlflow_image
  ecr_repository_arns = [module.ecr_mlflow.repository_arn]

  public_endpoint = var.mlflow_public_endpoint
  # mlflow.<domain>'s certificate (dns.tf) unless one is given: HTTPS even inside the VPC, since
  # basic-auth credentials cross it.
  https           = var.domain_name != null || var.mlflow_certificate_arn != null
  certificate_arn = local.mlflow_certificate_arn
  # Every environment's API tasks run in this VPC and reach the registry through its CIDR.
  allowed_cidr_blocks = concat([module.network.vpc_cidr_block], var.mlflow_allowed_cidr_blocks)
  extra_allowed_hosts = concat(local.mlflow_hosts, var.mlflow_extra_allowed_hosts)

  replace_tasks_on_rotation = var.mlflow_replace_tasks_on_rotation

  db_instance_class   = var.mlflow_db_instance_class
  db_multi_az         = var.mlflow_db_multi_az
  deletion_protection = var.deletion_protection
}

module "github_oidc" {
  source = "../modules/github_oidc"

  create_oidc_provider = var.create_oidc_provider
  oidc_provider_arn    = var.oidc_provider_arn
}

# Until the first MLflow image exists there is no registry to promote in: say so on every plan.
check "mlflow_service_runs" {
  assert {
    condition     = var.mlflow_image != null
    error_message = "MLflow's ECS service is not created yet: push the first images (infra/terraform/README.md, bootstrap step 4), set mlflow_image in envs/platform.tfvars and apply again."
  }
}

# --- What the environment roots read ----------------------------------------------------------

# One JSON document instead of terraform_remote_state: the environment roots (and their plan
# roles) read this parameter only, never the platform's state. Nothing in it is secret.
resource "aws_ssm_parameter" "outputs" {
  #checkov:skip=CKV2_AWS_34:The document holds IDs, ARNs and URLs only (no secret); a String parameter lets plan roles read it without kms:Decrypt.
  name        = "/${var.project}/platform/outputs"
  description = "Platform outputs the environment roots read (schema_version 1)"
  type        = "String"
  tier        = "Standard"
  value = jsonencode({
    schema_version           = 1
    vpc_id                   = module.network.vpc_id
    vpc_cidr_block           = module.network.vpc_cidr_block
    private_subnet_ids       = module.network.private_subnet_ids
    public_subnet_ids        = module.network.public_subnet_ids
    kms_key_arn              = module.kms.key_arn
    ecr_serve_repository_arn = module.ecr_serve.repository_arn
    ecr_serve_repository_url = module.ecr_serve.repository_url
    mlflow_tracking_uri      = local.mlflow_tracking_uri
    oidc_provider_arn        = module.github_oidc.oidc_provider_arn
    permissions_boundary_arn = { for e, p in aws_iam_policy.boundary : e => p.arn }
    # The DVC remote, for the deploy roles' data-in-remote gate (stack/iam.tf).
    dvc_remote_bucket_arn = local.dvc_bucket_arn
    dvc_remote_prefix     = local.dvc_prefix
  })
}
