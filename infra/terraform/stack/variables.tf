variable "environment" {
  description = "Environment this state describes; names every resource and is the registry alias the API serves."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "aws_region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"
}

variable "aws_account_id" {
  description = "AWS account the environment must live in; terraform refuses other credentials. null skips the check."
  type        = string
  default     = null
}

variable "project" {
  description = "Project name: first part of every resource name and the project tag."
  type        = string
  default     = "credit-risk"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the CI, CD and terraform roles."
  type        = string
}

variable "state_bucket_name" {
  description = "S3 bucket of the terraform state (the same one envs/<env>.backend.hcl names); the CI and terraform roles get access to it."
  type        = string
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider; false when another environment in the same account already did."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of the existing GitHub OIDC provider when create_oidc_provider is false."
  type        = string
  default     = null
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the environment's VPC."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
}

variable "initial_image_tag" {
  description = "Image tag the first task definitions reference; CD deploys the real images (tagged with the git SHA)."
  type        = string
  default     = "bootstrap"
}

variable "deletion_protection" {
  description = "Protect the database and load balancers from deletion."
  type        = bool
  default     = true
}

variable "api_allowed_cidr_blocks" {
  description = "IPv4 CIDRs that may call the prediction API."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "api_certificate_arn" {
  description = "ACM certificate of the API's HTTPS listener; null serves plain HTTP (not for real traffic)."
  type        = string
  default     = null
}

variable "api_environment" {
  description = "Extra environment variables of the API container (no secrets), merged over the defaults."
  type        = map(string)
  default     = {}
}

variable "api_cpu" {
  description = "Fargate CPU units of an API task."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "Fargate memory (MiB) of an API task."
  type        = number
  default     = 1024
}

variable "api_min_capacity" {
  description = "Fewest API tasks."
  type        = number
}

variable "api_max_capacity" {
  description = "Most API tasks autoscaling starts."
  type        = number
}

variable "mlflow_public_endpoint" {
  description = "Expose MLflow on a public load balancer (restricted to mlflow_allowed_cidr_blocks) so GitHub-hosted runners reach it."
  type        = bool
  default     = false
}

variable "mlflow_allowed_cidr_blocks" {
  description = "IPv4 CIDRs besides the VPC that may reach MLflow (a VPN, self-hosted runners)."
  type        = list(string)
  default     = []
}

variable "mlflow_certificate_arn" {
  description = "ACM certificate for MLflow's HTTPS listener; null serves HTTP."
  type        = string
  default     = null
}

variable "mlflow_extra_allowed_hosts" {
  description = "DNS names besides the load balancer's under which clients reach MLflow."
  type        = list(string)
  default     = []
}

variable "mlflow_db_instance_class" {
  description = "RDS instance class of MLflow's PostgreSQL."
  type        = string
  default     = "db.t4g.medium"
}

variable "mlflow_db_multi_az" {
  description = "Run MLflow's PostgreSQL with a standby in a second zone."
  type        = bool
}
