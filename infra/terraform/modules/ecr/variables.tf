variable "name" {
  description = "Name of the ECR repository (for example credit-risk/api)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.name))
    error_message = "name must be a valid ECR repository name: lowercase letters, digits, . _ - and /."
  }
}

variable "encryption_type" {
  description = "Encryption at rest: KMS (customer or AWS-managed key) or AES256 (ECR-managed)."
  type        = string
  default     = "KMS"

  validation {
    condition     = contains(["KMS", "AES256"], var.encryption_type)
    error_message = "encryption_type must be KMS or AES256."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for encryption_type KMS; null uses the AWS-managed aws/ecr key."
  type        = string
  default     = null
}

variable "max_image_count" {
  description = "How many images that are not releases the lifecycle policy keeps (newest first); older ones expire."
  type        = number
  default     = 100

  validation {
    condition     = var.max_image_count >= 1
    error_message = "max_image_count must be at least 1."
  }
}

variable "untagged_expiry_days" {
  description = "Days after which untagged images (failed or superseded pushes) expire."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expiry_days >= 1
    error_message = "untagged_expiry_days must be at least 1."
  }
}

variable "force_delete" {
  description = "Let terraform destroy the repository while it still holds images (tests only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to the repository on top of the provider's default tags."
  type        = map(string)
  default     = {}
}

variable "release_tag_pattern" {
  description = "Tag pattern (ECR tagPatternList syntax) of images a recorded release references; the lifecycle policy never expires them."
  type        = string
  default     = "release-*"

  validation {
    condition     = length(regexall("\\*", var.release_tag_pattern)) <= 4 && var.release_tag_pattern != "*"
    error_message = "release_tag_pattern must select release tags only (not \"*\") and hold at most four wildcards."
  }
}

variable "release_images_kept" {
  description = "Count of the protective lifecycle rule: release images beyond this many would expire. Far above any real count (ECR holds at most 20,000 images per repository)."
  type        = number
  default     = 10000

  validation {
    condition     = var.release_images_kept >= 1000
    error_message = "release_images_kept must be at least 1000: the rule exists to keep releases, not to expire them."
  }
}
