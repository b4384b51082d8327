# The CD workflow reads these with `terraform output -json` (or they are copied into the
# GitHub environment's variables once after apply; see infra/terraform/README.md).

output "environment" {
  description = "Name of the environment."
  value       = var.environment
}

output "aws_region" {
  description = "AWS region of the environment (AWS_REGION of the workflows)."
  value       = var.aws_region
}

output "ecr_repository_url" {
  description = "ECR repository of the API image (ECR_REPOSITORY_URL): CD pushes <url>:<git sha>."
  value       = module.ecr_api.repository_url
}

output "mlflow_ecr_repository_url" {
  description = "ECR repository of the MLflow server image."
  value       = module.ecr_mlflow.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the environment (ECS_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "ECS service of the prediction API (ECS_SERVICE)."
  value       = module.api.service_name
}

output "ecs_task_definition_family" {
  description = "Task definition family of the API, which CD registers new revisions in."
  value       = module.api.task_definition_family
}

output "ecs_container_name" {
  description = "Container of the API task whose image CD replaces."
  value       = module.api.container_name
}

output "mlflow_service_name" {
  description = "ECS service of the MLflow server."
  value       = module.mlflow.service_name
}

output "mlflow_tracking_uri" {
  description = "MLflow tracking URI (MLFLOW_TRACKING_URI) of the registry CD promotes in."
  value       = module.mlflow.tracking_uri
}

output "mlflow_artifact_bucket" {
  description = "S3 bucket of MLflow's artifacts."
  value       = module.mlflow.artifact_bucket_name
}

output "api_url" {
  description = "Base URL of the prediction API (API_URL of the e2e and smoke tests)."
  value       = module.api.url
}

output "ci_role_arn" {
  description = "Role CI assumes through OIDC (AWS_CI_ROLE_ARN)."
  value       = module.github_oidc.ci_role_arn
}

output "cd_role_arn" {
  description = "Role CD assumes through OIDC in this environment (AWS_CD_ROLE_ARN)."
  value       = module.github_oidc.cd_role_arn
}

output "terraform_role_arn" {
  description = "Role the terraform workflow assumes for apply (TF_ROLE_ARN_STAGING / TF_ROLE_ARN_PRODUCTION)."
  value       = module.github_oidc.terraform_role_arn
}
