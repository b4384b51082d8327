output "application_id" {
  description = "The EMR Serverless application."
  value       = module.spark.application_id
}

output "job_role_arn" {
  description = "The job execution role."
  value       = module.spark.job_role_arn
}

output "job_role_name" {
  description = "Name of the job execution role."
  value       = module.spark.job_role_name
}

output "bucket_name" {
  description = "The batch bucket."
  value       = module.spark.bucket_name
}

output "s3_prefixes" {
  description = "The batch bucket's prefixes."
  value       = module.spark.s3_prefixes
}

output "kms_key_arn" {
  description = "The key of the bucket and the secret."
  value       = module.kms.key_arn
}

output "registry_secret_arn" {
  description = "The registry secret the job reads."
  value       = aws_secretsmanager_secret.registry.arn
}

output "subnet_ids" {
  description = "The private subnets."
  value       = aws_subnet.private[*].id
}

output "log_group_name" {
  description = "The jobs' log group."
  value       = module.spark.log_group_name
}
