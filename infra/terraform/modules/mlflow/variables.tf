variable "name" {
  description = "Name of the MLflow deployment: prefix of the database, bucket, service and roles."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens (at most 41 characters)."
  }
}

variable "vpc_id" {
  description = "VPC of the database, load balancer and tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (two AZs or more) of the database and the tasks."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer when public_endpoint is true."
  type        = list(string)
  default     = []
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the server runs on."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster the server runs on."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key that encrypts the database, its secret, the bucket and the logs."
  type        = string
}

variable "container_image" {
  description = "MLflow server image CD pushed (the Dockerfile's mlflow target: mlflow[auth], psycopg2, boto3), by digest or immutable git-SHA/release tag; null creates everything but the ECS service (first apply, before the first push)."
  type        = string
  default     = null
}

variable "auth_default_permission" {
  description = "Permission of MLflow's basic-auth app for users without an explicit grant (READ lets the reader identity validate and plan; writes need a grant)."
  type        = string
  default     = "READ"

  validation {
    condition     = contains(["READ", "NO_PERMISSIONS"], var.auth_default_permission)
    error_message = "auth_default_permission must be READ or NO_PERMISSIONS: writes are granted per user."
  }
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary set on the server's task and execution roles; null sets none."
  type        = string
  default     = null
}

variable "container_port" {
  description = "Port mlflow server listens on."
  type        = number
  default     = 5000
}

variable "container_user" {
  description = "uid:gid the server runs as (not root)."
  type        = string
  default     = "10001:10001"
}

variable "workers" {
  description = "Worker processes of mlflow server."
  type        = number
  default     = 2
}

variable "cpu" {
  description = "Fargate CPU units of a server task."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate memory (MiB) of a server task."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Server tasks at creation; also autoscaling's minimum."
  type        = number
  default     = 1
}

variable "max_capacity" {
  description = "Most server tasks autoscaling starts."
  type        = number
  default     = 3
}

variable "public_endpoint" {
  description = "Put the server's load balancer in public subnets (then restrict allowed_cidr_blocks and set certificate_arn); false keeps it internal."
  type        = bool
  default     = false
}

variable "allowed_cidr_blocks" {
  description = "IPv4 CIDRs that may reach the server's load balancer (for example the VPC, or a VPN)."
  type        = list(string)
  default     = []
}

variable "allowed_security_group_ids" {
  description = "Security groups that may reach the server's load balancer (for example the API tasks)."
  type        = list(string)
  default     = []
}

variable "extra_allowed_hosts" {
  description = "Host names besides the ALB's that clients use for the server (a DNS alias); mlflow refuses other Host headers."
  type        = list(string)
  default     = []
}

variable "https" {
  description = "Serve HTTPS; null: whenever certificate_arn is set. Set it when the certificate is created in the same apply."
  type        = bool
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on the server's load balancer; null serves HTTP."
  type        = string
  default     = null
}

variable "ecr_repository_arns" {
  description = "ECR repositories the server image may be pulled from."
  type        = list(string)
  default     = []
}

variable "artifact_bucket_name" {
  description = "Name of the artifact bucket; null derives <name>-artifacts-<account id>."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted artifact version is kept before it expires."
  type        = number
  default     = 90
}

variable "access_log_bucket" {
  description = "Bucket for S3 server access logs of the artifact bucket; null turns them off."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform delete the artifact bucket with its objects (never in production)."
  type        = bool
  default     = false
}

variable "postgres_major_version" {
  description = "Major version of PostgreSQL (the parameter group family follows it)."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class of the database."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the database in GiB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling of the database in GiB."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Run a standby database in a second AZ."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days RDS keeps automated backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Protect the database and load balancer from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the server's logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource on top of the provider's default tags."
  type        = map(string)
  default     = {}
}

variable "replace_tasks_on_rotation" {
  description = "Force a new deployment of the server after each rotation of the database password (EventBridge rule + Step Functions, rotation.tf)."
  type        = bool
  default     = true
}
