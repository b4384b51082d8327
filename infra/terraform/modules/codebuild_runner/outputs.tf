output "project_name" {
  description = "CodeBuild project name (runs-on: codebuild-<this>-$${{ github.run_id }}-$${{ github.run_attempt }})."
  value       = aws_codebuild_project.this.name
}

output "runs_on" {
  description = "The runs-on value of a job that runs on these runners."
  value       = "codebuild-${aws_codebuild_project.this.name}-$${{ github.run_id }}-$${{ github.run_attempt }}"
}

output "role_arn" {
  description = "Role of the builds (logs, network interfaces, GitHub connection only)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the builds' role, for policies the platform attaches (e.g. the DVC remote's existence check)."
  value       = aws_iam_role.this.name
}

output "security_group_id" {
  description = "Security group of the runners, for rules that let them reach a resource in the VPC."
  value       = aws_security_group.this.id
}

output "webhook_payload_url" {
  description = "URL GitHub sends workflow_job events to."
  value       = aws_codebuild_webhook.this.payload_url
}
