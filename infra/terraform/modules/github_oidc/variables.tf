variable "name_prefix" {
  description = "Prefix of the role names (for example credit-risk-staging)."
  type        = string
}

variable "github_repository" {
  description = "The repository whose workflows may assume the roles, as owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (there is one per account: false in the second environment of a shared account)."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of an existing GitHub OIDC provider, used when create_oidc_provider is false."
  type        = string
  default     = null

  validation {
    condition     = var.create_oidc_provider || var.oidc_provider_arn != null
    error_message = "Set oidc_provider_arn when create_oidc_provider is false."
  }
}

variable "ci_branches" {
  description = "Branches whose push workflows may assume the CI role (pull requests always may)."
  type        = list(string)
  default     = ["main"]
}

variable "cd_environments" {
  description = "GitHub environments whose jobs may assume the CD role (for example [\"staging\"])."
  type        = list(string)

  validation {
    condition     = length(var.cd_environments) > 0
    error_message = "Name at least one GitHub environment for the CD role."
  }
}

variable "terraform_environment" {
  description = "The GitHub environment (with required reviewers) whose jobs may assume the terraform role."
  type        = string
  default     = "infrastructure"
}

variable "ecr_repository_arns" {
  description = "ECR repositories CI may pull from and CD may push to."
  type        = list(string)
}

variable "ecs_cluster_arn" {
  description = "ARN of the ECS cluster CD deploys to."
  type        = string
}

variable "ecs_cluster_name" {
  description = "Name of the ECS cluster CD deploys to."
  type        = string
}

variable "ecs_service_arns" {
  description = "ARNs of the ECS services CD may update."
  type        = list(string)
}

variable "passable_role_arns" {
  description = "Task and execution roles CD may pass to ECS in new task definitions (and nothing else)."
  type        = list(string)
}

variable "state_bucket_name" {
  description = "S3 bucket of the terraform state (read by CI's plan, written by the terraform role)."
  type        = string
}

variable "state_key_prefix" {
  description = "Key prefix of this project's state objects in the state bucket."
  type        = string
  default     = "credit-risk/"
}

variable "ci_plan_policy_arns" {
  description = "Managed policies for the CI role so PR plans can refresh state (read-only, for example ReadOnlyAccess)."
  type        = list(string)
  default     = []
}

variable "terraform_policy_arns" {
  description = "Managed policies of the terraform role besides its scoped IAM and state access (for example PowerUserAccess)."
  type        = list(string)
  default     = []
}

variable "managed_iam_name_prefix" {
  description = "Only IAM roles and policies whose names start with this may be written by the terraform role."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource on top of the provider's default tags."
  type        = map(string)
  default     = {}
}
