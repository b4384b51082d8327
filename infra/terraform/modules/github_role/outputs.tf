output "arn" {
  description = "ARN of the role (what the workflow's role-to-assume names)."
  value       = aws_iam_role.this.arn
}

output "name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "subjects" {
  description = "The OIDC `sub` values the trust policy accepts (exact, then patterns)."
  value       = concat(local.exact_subjects, local.pattern_subjects)
}

output "trust_policy" {
  description = "The trust policy document (JSON)."
  value       = data.aws_iam_policy_document.trust.json
}
