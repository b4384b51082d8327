output "ecr_repository_url" {
  description = "URL of the ECR repository the ecr module created."
  value       = module.ecr.repository_url
}

output "ecr_repository_name" {
  description = "Name of the ECR repository the ecr module created."
  value       = module.ecr.repository_name
}

output "bucket_name" {
  description = "Name of the test S3 bucket."
  value       = aws_s3_bucket.artifacts.bucket
}

output "ecs_cluster_name" {
  description = "Name of the test ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "task_role_name" {
  description = "Name of the test IAM role."
  value       = aws_iam_role.task.name
}
