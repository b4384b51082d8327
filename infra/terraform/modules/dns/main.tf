# A DNS name with a certificate for it: an ACM certificate validated through DNS records in the
# Route 53 zone, and an alias record from the name to a load balancer. Every URL a job or a task
# uses is such a name: no certificate can name a load balancer's *.elb.amazonaws.com.
#
# An adopter who already holds a certificate for the name (a wildcard, an imported one) passes
# certificate_arn; then only the alias record is made here.
#
# The certificate is usable (certificate_arn) only once ACM has seen the validation records and
# issued it: the HTTPS listener that takes it waits for aws_acm_certificate_validation.

locals {
  validation = { for o in flatten(aws_acm_certificate.this[*].domain_validation_options) : o.domain_name => o }
}

resource "aws_acm_certificate" "this" {
  count = var.certificate_arn == null ? 1 : 0

  domain_name       = var.name
  validation_method = "DNS"
  key_algorithm     = "RSA_2048"
  tags              = merge(var.tags, { Name = var.name })

  # A new certificate (another name) is issued before the old one leaves the listener.
  lifecycle {
    create_before_destroy = true
  }
}

# Keyed by the name (known when planning), the record's name and value from ACM (known once it
# exists).
resource "aws_route53_record" "validation" {
  for_each = toset(var.certificate_arn == null ? [var.name] : [])

  zone_id         = var.zone_id
  name            = local.validation[each.key].resource_record_name
  type            = local.validation[each.key].resource_record_type
  records         = [local.validation[each.key].resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count = var.certificate_arn == null ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

# A and AAAA aliases to the load balancer (dualstack name, no TTL, follows its addresses).
resource "aws_route53_record" "alias" {
  for_each = toset(["A", "AAAA"])

  zone_id = var.zone_id
  name    = var.name
  type    = each.value

  alias {
    name                   = var.target_dns_name
    zone_id                = var.target_zone_id
    evaluate_target_health = true
  }
}
