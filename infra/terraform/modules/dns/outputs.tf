output "name" {
  description = "The DNS name."
  value       = var.name
}

output "url" {
  description = "https://<name>: the URL clients use."
  value       = "https://${var.name}"
}

output "certificate_arn" {
  description = "ARN of the certificate for name: the given one, or the one ACM issued (known once it is validated)."
  value       = var.certificate_arn != null ? var.certificate_arn : aws_acm_certificate_validation.this[0].certificate_arn
}
