output "application_id" {
  description = "EMR Serverless application id (`mlops spark submit --application-id`, ML_SPARK_APPLICATION_ID)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "ARN of the application."
  value       = aws_emrserverless_application.this.arn
}

output "job_role_arn" {
  description = "Execution role every job runs as (ML_SPARK_JOB_ROLE_ARN)."
  value       = aws_iam_role.job.arn
}

output "job_role_name" {
  description = "Name of the job execution role."
  value       = aws_iam_role.job.name
}

output "bucket_name" {
  description = "The batch bucket."
  value       = aws_s3_bucket.batch.bucket
}

output "bucket_arn" {
  description = "ARN of the batch bucket."
  value       = aws_s3_bucket.batch.arn
}

output "s3_prefixes" {
  description = "s3:// URIs of the input, output, code and logs prefixes."
  value       = { for k, p in local.prefixes : k => "s3://${aws_s3_bucket.batch.bucket}/${p}" }
}

output "log_group_name" {
  description = "CloudWatch log group of the jobs."
  value       = aws_cloudwatch_log_group.jobs.name
}

output "job_policy_json" {
  description = "The job role's inline policy (the least-privilege test evaluates the job's calls against it)."
  value       = data.aws_iam_policy_document.job.json
}
