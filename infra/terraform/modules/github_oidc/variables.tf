variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (there is one per account: false when it already exists)."
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

variable "tags" {
  description = "Tags added to the provider on top of the provider's default tags."
  type        = map(string)
  default     = {}
}
