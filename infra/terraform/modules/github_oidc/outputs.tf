output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the roles trust."
  value       = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.oidc_provider_arn
}

output "oidc_host" {
  description = "Host of GitHub's token issuer: the prefix of the aud and sub condition keys."
  value       = local.oidc_host
}
