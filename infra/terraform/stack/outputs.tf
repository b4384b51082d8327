# Names follow the GitHub configuration names of config/platform.yaml, in lower_snake_case
# (docs/contracts.md#configuration-names); the
# bootstrap copies github_environment_variables into the GitHub environment named like this one.

output "environment" {
  description = "Name of the environment (and of its GitHub environment)."
  value       = var.environment
}

output "aws_deploy_role_arn" {
  description = "Deploy role of this environment (GitHub environment variable AWS_DEPLOY_ROLE_ARN)."
  value       = module.role_deploy.arn
}

output "aws_deploy_role_subjects" {
  description = "OIDC sub values the deploy role trusts (repository, environment, main)."
  value       = module.role_deploy.subjects
}

output "ecs_cluster" {
  description = "ECS cluster of the environment (ECS_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service" {
  description = "ECS service of the prediction API (ECS_SERVICE)."
  value       = module.api.service_name
}

output "ecs_task_definition_family" {
  description = "Task definition family of the API; CD registers each release as a revision of its latest revision."
  value       = module.api.task_definition_family
}

output "ecs_container_name" {
  description = "Container of the API task whose image CD replaces."
  value       = module.api.container_name
}

output "service_url" {
  description = "Base URL of the prediction API (SERVICE_URL of the smoke and e2e tests): https://api.<environment>.<domain_name>; without a domain (staging only) the internal load balancer's http URL."
  value       = local.service_url
}

output "api_token_secret_arn" {
  description = "Secrets Manager secret (JSON key token) of the API's bearer token; the bootstrap copies its value into the GitHub environment secret SERVICE_API_TOKEN."
  value       = aws_secretsmanager_secret.api_token.arn
}

output "mlflow_reader_secret_arn" {
  description = "Secrets Manager secret (username, password) of the MLflow user the API reads the registry as; the bootstrap creates that user with READ."
  value       = aws_secretsmanager_secret.mlflow_reader.arn
}

output "seed_secrets" {
  description = "Secrets this root creates empty, with the JSON shape scripts/seed_secrets.py gives them (\"@random\" = generated)."
  value = {
    api_token     = { arn = aws_secretsmanager_secret.api_token.arn, template = { token = "@random" } }
    mlflow_reader = { arn = aws_secretsmanager_secret.mlflow_reader.arn, template = { username = "serve-${var.environment}", password = "@random" } }
    feature_store = { arn = aws_secretsmanager_secret.feature_store_token.arn, template = { token = "@random" } }
  }
}

output "github_environment_variables" {
  description = "Variables of the GitHub environment named like this one, as the workflows read them."
  value = {
    AWS_DEPLOY_ROLE_ARN = module.role_deploy.arn
    ECS_CLUSTER         = aws_ecs_cluster.this.name
    ECS_SERVICE         = module.api.service_name
    SERVICE_URL         = local.service_url
  }
}

output "feature_store_url" {
  description = "rediss:// URL of the online feature store (null while feature_store_enabled is false); its token is in the feature_store secret."
  value       = var.feature_store_enabled ? module.feature_store[0].url : null
}
