# api.<environment>.<domain_name>: the API's name, with a certificate for it (modules/dns). The
# smoke and e2e tests (SERVICE_URL) call this name; TLS verification of a load balancer's
# *.elb.amazonaws.com name can never pass, since no certificate can name it.

locals {
  api_hostname = var.domain_name == null ? null : "api.${var.environment}.${var.domain_name}"
  service_url  = local.api_hostname == null ? module.api.url : "https://${local.api_hostname}"
}

module "api_name" {
  source = "../modules/dns"
  count  = var.domain_name == null ? 0 : 1

  name            = local.api_hostname
  zone_id         = var.route53_zone_id
  target_dns_name = module.api.alb_dns_name
  target_zone_id  = module.api.alb_zone_id
  certificate_arn = var.api_certificate_arn
}
