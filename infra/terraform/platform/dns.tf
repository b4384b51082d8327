# mlflow.<domain_name>: the registry's one name, with a certificate for it (modules/dns). The
# tracking URI that CD, training and every API task use is this name, never the load balancer's.
# Without a domain the registry keeps its load balancer's name (an internal one: reachable in the
# VPC only), the bootstrap case of an account without a zone yet.

locals {
  mlflow_hostname        = var.domain_name == null ? null : "mlflow.${var.domain_name}"
  mlflow_hosts           = compact([local.mlflow_hostname])
  mlflow_certificate_arn = var.domain_name == null ? var.mlflow_certificate_arn : module.mlflow_name[0].certificate_arn
  mlflow_tracking_uri    = local.mlflow_hostname == null ? module.mlflow.tracking_uri : "https://${local.mlflow_hostname}"
}

module "mlflow_name" {
  source = "../modules/dns"
  count  = var.domain_name == null ? 0 : 1

  name            = local.mlflow_hostname
  zone_id         = var.route53_zone_id
  target_dns_name = module.mlflow.alb_dns_name
  target_zone_id  = module.mlflow.alb_zone_id
  certificate_arn = var.mlflow_certificate_arn
}
