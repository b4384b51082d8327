output "primary_endpoint" {
  description = "DNS name of the primary (writes: `mlops features materialize`)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint" {
  description = "DNS name that spreads reads over the replicas."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "url" {
  description = "rediss:// URL of the primary (TLS; the AUTH token comes from the secret, never the URL)."
  value       = "rediss://${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
}

output "security_group_id" {
  description = "Security group of the store."
  value       = aws_security_group.this.id
}

output "security" {
  description = "What guards the store, for the environment root's tests: TLS, at-rest encryption, the token's secret, who may connect."
  value = {
    transit_encryption = aws_elasticache_replication_group.this.transit_encryption_enabled
    transit_mode       = aws_elasticache_replication_group.this.transit_encryption_mode
    at_rest_encryption = aws_elasticache_replication_group.this.at_rest_encryption_enabled
    kms_key_arn        = aws_elasticache_replication_group.this.kms_key_id
    auth_token_secret  = data.aws_secretsmanager_secret_version.auth_token.secret_id
    ingress_from       = [for r in aws_vpc_security_group_ingress_rule.from_clients : r.referenced_security_group_id]
    ingress_cidrs      = [for r in aws_vpc_security_group_ingress_rule.from_clients : r.cidr_ipv4 if r.cidr_ipv4 != null]
    eviction_policy    = one([for p in aws_elasticache_parameter_group.this.parameter : p.value if p.name == "maxmemory-policy"])
  }
}
