variable "name" {
  description = "Name of the replication group and its resources (1-40 characters: letters, digits, hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name))
    error_message = "name must start with a lowercase letter and hold at most 40 lowercase letters, digits or hyphens (ElastiCache's rule)."
  }
}

variable "vpc_id" {
  description = "VPC of the store."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, in at least two availability zones when replicas > 0."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups that may open 6379 to the store (the API's task security group); nothing else can."
  type        = list(string)

  validation {
    condition     = length(var.client_security_group_ids) > 0
    error_message = "name at least one client security group: a store nobody can reach is a mistake."
  }
}

variable "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token as JSON {\"token\": \"...\"} (16-128 characters)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the data at rest (and its snapshots)."
  type        = string
}

variable "node_type" {
  description = "Cache node type. About 217 bytes per applicant (docs/performance.md): 1 M applicants in two snapshots (~430 MiB) fit cache.t4g.small (1.37 GiB)."
  type        = string
  default     = "cache.t4g.small"
}

variable "replicas" {
  description = "Read replicas in other zones (0 = a single node without failover)."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 0 && var.replicas <= 5
    error_message = "replicas must be between 0 and 5."
  }
}

variable "engine_version" {
  description = "Redis OSS engine version, exactly: major.minor (ElastiCache takes no patch level for 7.x and applies its own service updates). Minor upgrades happen only by changing this (auto_minor_version_upgrade is off)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be an exact Redis OSS 7 version such as \"7.1\" (the parameter group family is redis7; no \"7.x\")."
  }
}

variable "snapshot_retention_days" {
  description = "Days of daily backups kept (0 = none: the store is rebuilt by materialize)."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
