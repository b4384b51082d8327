variable "name" {
  description = "Name of the role (for example credit-risk-github-release)."
  type        = string
}

variable "description" {
  description = "What the role is for, shown in the IAM console."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider (modules/github_oidc)."
  type        = string
}

variable "oidc_host" {
  description = "Host of GitHub's token issuer, prefix of the aud/sub condition keys."
  type        = string
  default     = "token.actions.githubusercontent.com"
}

variable "github_repository" {
  description = "The repository whose jobs may assume the role, as owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "github_environment" {
  description = "GitHub environment whose jobs (on github_ref) may assume the role; null trusts no environment."
  type        = string
  default     = null
}

variable "github_ref" {
  description = "Git ref the environment's jobs must run on (the `ref` claim)."
  type        = string
  default     = "refs/heads/main"

  validation {
    condition     = can(regex("^refs/(heads|tags)/[^*]+$", var.github_ref))
    error_message = "github_ref must be one full ref without wildcards, for example refs/heads/main."
  }
}

variable "trust_pull_requests" {
  description = "Let pull_request jobs of the repository (not forks: they get no OIDC token) assume the role; only for read-only plan roles."
  type        = bool
  default     = false
}

variable "policies" {
  description = "Inline policies of the role: name => policy JSON."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for the role; null sets none."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Longest session (seconds) a job can request."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags added to the role on top of the provider's default tags."
  type        = map(string)
  default     = {}
}
