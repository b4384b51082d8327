output "service_name" {
  description = "Name of the ECS service (CD updates it); the same whether or not the service exists yet."
  value       = var.name
}

output "service_arn" {
  description = "ARN of the ECS service, or null while container_image is unset (no service yet)."
  value       = local.create_service ? aws_ecs_service.this[0].id : null
}

output "task_definition_family" {
  description = "Task definition family; CD registers new revisions in it (the service name)."
  value       = var.name
}

output "task_definition_arn" {
  description = "ARN of the revision terraform registered last, or null while container_image is unset."
  value       = local.create_service ? aws_ecs_task_definition.this[0].arn : null
}

output "container_name" {
  description = "Name of the container whose image CD replaces."
  value       = var.container_name
}

output "task_role_arn" {
  description = "ARN of the task role (the application's AWS identity)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the execution role (image pull, logs, secrets)."
  value       = aws_iam_role.execution.arn
}

output "task_security_group_id" {
  description = "Security group of the tasks, for rules that let them reach other resources."
  value       = aws_security_group.tasks.id
}

output "alb_security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.alb.id
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone of the load balancer, for an alias record."
  value       = aws_lb.this.zone_id
}

output "url" {
  description = "Base URL of the service through its load balancer (https when a certificate is set)."
  value       = "${local.scheme}://${aws_lb.this.dns_name}"
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "container_definitions_json" {
  description = "The container definition terraform registers (JSON; no secret values: secrets are valueFrom ARNs)."
  value       = jsonencode([local.container_definition])
}
