variable "name" {
  description = "Alias of the key, without the alias/ prefix (for example credit-risk-staging)."
  type        = string
}

variable "description" {
  description = "Human-readable purpose of the key, shown in the KMS console."
  type        = string
  default     = "Encrypts logs, artifacts, database and secrets of one environment"
}

variable "deletion_window_in_days" {
  description = "Days between scheduling deletion of the key and its destruction (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "rotation_period_in_days" {
  description = "Days between automatic rotations of the key material (90-2560)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to the key on top of the provider's default tags."
  type        = map(string)
  default     = {}
}
