# Names follow the GitHub configuration names of config/platform.yaml, in lower_snake_case
# (docs/contracts.md#configuration-names). The
# bootstrap reads github_repository_variables and github_environment_variables with
# `terraform output -json` and sets them through `gh api`.

output "aws_region" {
  description = "AWS region of the platform and the environments (AWS_REGION)."
  value       = var.aws_region
}

output "tf_state_bucket" {
  description = "S3 bucket of every root's state (TF_STATE_BUCKET)."
  value       = var.state_bucket_name
}

output "mlflow_tracking_uri" {
  description = "Tracking URI of the one MLflow registry (MLFLOW_TRACKING_URI): https://mlflow.<domain_name> when a domain is set; basic-auth protected."
  value       = local.mlflow_tracking_uri
}

output "ecr_serve_repository_url" {
  description = "ECR repository of the serve image (ECR_SERVE_REPOSITORY_URL); CD pushes <url>:<git sha>, a release adds release-<git sha>."
  value       = module.ecr_serve.repository_url
}

output "ecr_mlflow_repository_url" {
  description = "ECR repository of the MLflow server image (ECR_MLFLOW_REPOSITORY_URL)."
  value       = module.ecr_mlflow.repository_url
}

output "aws_release_role_arn" {
  description = "Role of the CD job that pushes images and deploys MLflow (AWS_RELEASE_ROLE_ARN); the job must run in GitHub environment var.github_release_environment on main."
  value       = module.role_release.arn
}

output "aws_train_role_arn" {
  description = "Role of the retrain job (AWS_TRAIN_ROLE_ARN of GitHub environment retrain)."
  value       = module.role_train.arn
}

output "aws_terraform_role_arns" {
  description = "Apply role per root, keyed by its GitHub environment (AWS_TERRAFORM_ROLE_ARN of infrastructure-platform, -staging, -production)."
  value       = { for r, m in module.role_terraform : "${var.github_terraform_environment_prefix}${r}" => m.arn }
}

output "aws_plan_role_arn_platform" {
  description = "Read-only plan role of the platform root (AWS_PLAN_ROLE_ARN_PLATFORM), assumed by pull requests."
  value       = module.role_plan["platform"].arn
}

output "aws_plan_role_arn_staging" {
  description = "Read-only plan role of the staging root (AWS_PLAN_ROLE_ARN_STAGING), assumed by pull requests."
  value       = try(module.role_plan["staging"].arn, null)
}

output "aws_plan_role_arn_production" {
  description = "Read-only plan role of the production root (AWS_PLAN_ROLE_ARN_PRODUCTION), assumed by pull requests."
  value       = try(module.role_plan["production"].arn, null)
}

output "mlflow_ecs_cluster" {
  description = "ECS cluster of the MLflow service (MLFLOW_ECS_CLUSTER)."
  value       = aws_ecs_cluster.platform.name
}

output "mlflow_ecs_service" {
  description = "ECS service of MLflow (MLFLOW_ECS_SERVICE); CD deploys new MLflow images to it with the release role."
  value       = module.mlflow.service_name
}

output "mlflow_task_definition_family" {
  description = "Task definition family of MLflow; CD registers each MLflow image as a revision of its latest revision."
  value       = module.mlflow.task_definition_family
}

output "mlflow_artifact_bucket" {
  description = "S3 bucket of MLflow's artifacts (only the MLflow server's task role may read or write it)."
  value       = module.mlflow.artifact_bucket_name
}

output "mlflow_admin_secret_arn" {
  description = "Secrets Manager secret of MLflow's basic-auth admin (username, password, flask_secret_key); the bootstrap creates the reader, registry-writer and trainer users with it."
  value       = module.mlflow.admin_secret_arn
}

output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider."
  value       = module.github_oidc.oidc_provider_arn
}

output "role_subjects" {
  description = "OIDC sub values each GitHub role trusts (subject template include_claim_keys repo, context, ref); the bootstrap's preflight compares them with the repository's template."
  value = merge(
    { release = module.role_release.subjects, train = module.role_train.subjects },
    { for r, m in module.role_plan : "plan-${r}" => m.subjects },
    { for r, m in module.role_terraform : "terraform-${r}" => m.subjects },
  )
}

output "seed_secrets" {
  description = "Secrets this root creates empty, with the JSON shape scripts/seed_secrets.py gives them (\"@random\" = generated)."
  value = merge(
    { mlflow_admin = { arn = module.mlflow.admin_secret_arn, template = { username = "admin", password = "@random", flask_secret_key = "@random" } } },
    var.spark_enabled ? { spark_registry = { arn = aws_secretsmanager_secret.spark_registry[0].arn, template = { username = "batch-reader", password = "@random" } } } : {},
  )
}

output "github_repository_variables" {
  description = "Repository variables the workflows read, from this root."
  value = {
    AWS_REGION                   = var.aws_region
    TF_STATE_BUCKET              = var.state_bucket_name
    MLFLOW_TRACKING_URI          = local.mlflow_tracking_uri
    ECR_SERVE_REPOSITORY_URL     = module.ecr_serve.repository_url
    ECR_MLFLOW_REPOSITORY_URL    = module.ecr_mlflow.repository_url
    AWS_RELEASE_ROLE_ARN         = module.role_release.arn
    MLFLOW_ECS_CLUSTER           = aws_ecs_cluster.platform.name
    MLFLOW_ECS_SERVICE           = module.mlflow.service_name
    AWS_PLAN_ROLE_ARN_PLATFORM   = module.role_plan["platform"].arn
    AWS_PLAN_ROLE_ARN_STAGING    = try(module.role_plan["staging"].arn, null)
    AWS_PLAN_ROLE_ARN_PRODUCTION = try(module.role_plan["production"].arn, null)
  }
}

output "github_environment_variables" {
  description = "Variables per GitHub environment from this root (the environment roots add AWS_DEPLOY_ROLE_ARN, ECS_CLUSTER, ECS_SERVICE, SERVICE_URL to staging and production)."
  value = merge(
    { for r, m in module.role_terraform : "${var.github_terraform_environment_prefix}${r}" => { AWS_TERRAFORM_ROLE_ARN = m.arn } },
    { (var.github_retrain_environment) = { AWS_TRAIN_ROLE_ARN = module.role_train.arn } },
  )
}

output "codebuild_runner_project" {
  description = "CodeBuild project of the in-VPC GitHub Actions runners (config/platform.yaml runners.codebuild_project), or null while github_connection_arn is unset."
  value       = one(module.codebuild_runner[*].project_name)
}

output "codebuild_runner_runs_on" {
  description = "runs-on of the jobs that talk to the registry, or null while github_connection_arn is unset."
  value       = one(module.codebuild_runner[*].runs_on)
}

output "spark_registry_secret_arn" {
  description = "The secret {username, password} of the MLflow user the Spark jobs read the registry as (bootstrap creates that user, read only on the model); null while spark_enabled is false."
  value       = var.spark_enabled ? aws_secretsmanager_secret.spark_registry[0].arn : null
}

output "spark" {
  description = "The EMR Serverless application the `mlops spark submit` jobs run on (null while spark_enabled is false): ML_SPARK_APPLICATION_ID, ML_SPARK_JOB_ROLE_ARN and the batch bucket's prefixes."
  value = var.spark_enabled ? {
    application_id = module.spark[0].application_id
    job_role_arn   = module.spark[0].job_role_arn
    s3_prefixes    = module.spark[0].s3_prefixes
    log_group      = module.spark[0].log_group_name
  } : null
}
