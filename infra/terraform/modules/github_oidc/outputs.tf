output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the roles trust."
  value       = local.provider_arn
}

output "ci_role_arn" {
  description = "Role for CI jobs (pull requests, main): read-only. GitHub variable AWS_CI_ROLE_ARN."
  value       = aws_iam_role.ci.arn
}

output "cd_role_arn" {
  description = "Role for CD jobs in the deployment environments: push images, update services. GitHub variable AWS_CD_ROLE_ARN."
  value       = aws_iam_role.cd.arn
}

output "terraform_role_arn" {
  description = "Role for terraform apply from the infrastructure environment. GitHub variable TF_ROLE_ARN_<ENV>."
  value       = aws_iam_role.terraform.arn
}
