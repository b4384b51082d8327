output "tracking_uri" {
  description = "MLflow tracking URI (the server's load balancer): MLFLOW_TRACKING_URI of CD, training and the API."
  value       = module.server.url
}

output "artifact_bucket_name" {
  description = "Name of the S3 artifact bucket."
  value       = aws_s3_bucket.artifacts.bucket
}

output "artifact_bucket_arn" {
  description = "ARN of the S3 artifact bucket."
  value       = aws_s3_bucket.artifacts.arn
}

output "db_endpoint" {
  description = "host:port of the PostgreSQL backend store."
  value       = aws_db_instance.this.endpoint
}

output "db_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) with the database's username and password."
  value       = local.db_secret_arn
}

output "service_name" {
  description = "Name of the MLflow ECS service."
  value       = module.server.service_name
}

output "admin_secret_arn" {
  description = "Secrets Manager secret of the auth app's admin (username, password, flask_secret_key); seeded by scripts/seed_secrets.py."
  value       = aws_secretsmanager_secret.admin.arn
}

output "service_arn" {
  description = "ARN of the MLflow ECS service (null until container_image is set)."
  value       = module.server.service_arn
}

output "task_role_arn" {
  description = "Task role of the MLflow server."
  value       = module.server.task_role_arn
}

output "execution_role_arn" {
  description = "Execution role of the MLflow server."
  value       = module.server.execution_role_arn
}

output "task_definition_family" {
  description = "Task definition family of the MLflow server."
  value       = module.server.task_definition_family
}

output "alb_security_group_id" {
  description = "Security group of the server's load balancer."
  value       = module.server.alb_security_group_id
}

output "container_definitions_json" {
  description = "The MLflow server's container definition (JSON; secrets are valueFrom ARNs)."
  value       = module.server.container_definitions_json
}

output "alb_dns_name" {
  description = "DNS name of the server's load balancer (the target of mlflow.<domain>)."
  value       = module.server.alb_dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone of the server's load balancer, for an alias record."
  value       = module.server.alb_zone_id
}

output "replace_tasks_state_machine_arn" {
  description = "State machine that forces a new deployment of the MLflow service; EventBridge starts it after each database password rotation (null while there is no service)."
  value       = one(aws_sfn_state_machine.replace_tasks[*].arn)
}
