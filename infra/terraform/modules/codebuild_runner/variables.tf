variable "name" {
  description = "CodeBuild project name; jobs select it with runs-on: codebuild-<name>-$${{ github.run_id }}-$${{ github.run_attempt }}."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,149}$", var.name))
    error_message = "name must be 2-150 letters, digits, '-' or '_', starting with a letter or digit (a CodeBuild project name)."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflow jobs this project runs."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_connection_arn" {
  description = "ARN of the AWS CodeConnections connection to GitHub (status AVAILABLE: a person authorised the AWS Connector GitHub App once)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}:connection/", var.github_connection_arn))
    error_message = "github_connection_arn must be a CodeConnections connection ARN (arn:aws:codeconnections:<region>:<account>:connection/<id>)."
  }
}

variable "vpc_id" {
  description = "VPC the builds run in (the platform's, where MLflow's internal load balancer is)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of that VPC (DNS to its resolver)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT route) the builds' network interfaces go in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one private subnet."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the logs and the build's cache."
  type        = string
}

variable "permissions_boundary" {
  description = "Permissions boundary of the build's role (null: none)."
  type        = string
  default     = null
}

variable "image" {
  description = "CodeBuild image the runner runs in (a curated image: docker, git, Python)."
  type        = string
  default     = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
}

variable "compute_type" {
  description = "CodeBuild compute type of one runner (BUILD_GENERAL1_MEDIUM: 4 vCPU, 7 GB)."
  type        = string
  default     = "BUILD_GENERAL1_MEDIUM"
}

variable "build_timeout_minutes" {
  description = "Longest job a runner serves (minutes); longer than any registry job's timeout-minutes."
  type        = number
  default     = 90
}

variable "concurrent_builds" {
  description = "Most runners at once."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  description = "Retention of the runners' logs (days)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
