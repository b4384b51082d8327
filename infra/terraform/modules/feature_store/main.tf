# The online feature store: an ElastiCache (Redis OSS 7) replication group, cluster mode off (the
# read script addresses one snapshot's keys in one call, which a sharded cluster refuses), one
# primary and replicas in other zones with automatic failover; TLS in transit, an AUTH token from
# Secrets Manager, encryption at rest with the platform key; reachable on 6379 from the given
# security groups (the API's tasks) only, and from nowhere else.

locals {
  port = 6379
}

# Read at plan and apply: the plan and apply roles need secretsmanager:GetSecretValue on this one
# secret, and the token lands in the (encrypted) state. ElastiCache has no write-only token
# attribute in the AWS provider 5.x; rotate with auth_token_update_strategy (README).
data "aws_secretsmanager_secret_version" "auth_token" {
  secret_id = var.auth_token_secret_arn
}

resource "aws_elasticache_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "Redis of ${var.name}: 6379 from the API's tasks only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Redis from ${each.value}"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = each.value
}

# The clients' side: their security groups allow egress to this one only on 6379.
resource "aws_vpc_security_group_egress_rule" "clients_to_redis" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = each.value
  description                  = "Redis of ${var.name}"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-redis7"
  family      = "redis7"
  description = "noeviction: a full store refuses writes (materialize fails, nothing switches) instead of dropping current vectors"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:Multi-AZ automatic failover is on whenever replicas > 0 (the default, 1); replicas = 0 is a deliberate single-node store (a staging cost choice) that materialize rebuilds.
  replication_group_id = var.name
  description          = "Online feature store of ${var.name}"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = local.port
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.this.id]

  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = var.replicas > 0
  multi_az_enabled           = var.replicas > 0

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = jsondecode(data.aws_secretsmanager_secret_version.auth_token.secret_string)["token"]
  auth_token_update_strategy = "ROTATE"
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn

  snapshot_retention_limit = var.snapshot_retention_days
  # The engine moves only when engine_version does (a reviewed change), never by itself.
  auto_minor_version_upgrade = false
  apply_immediately          = false
  tags                       = var.tags
}
