variable "name" {
  description = "Name of the application, its role (<name>-job), log group and security group."
  type        = string
}

variable "release_label" {
  description = "EMR release: emr-7.x runs Spark 3.5, the line the `spark` extra pins (pyspark 3.5)."
  type        = string
  default     = "emr-7.5.0"

  validation {
    condition     = can(regex("^emr-7\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must be an emr-7.x release (Spark 3.5), e.g. emr-7.5.0: the jobs' pyspark is 3.5."
  }
}

variable "architecture" {
  description = "Worker CPU architecture: ARM64 (Graviton, about 20 % cheaper per vCPU-hour; xgboost and pyarrow ship aarch64 wheels) or X86_64. The packed virtualenv in code/ must be built for it."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.architecture)
    error_message = "architecture must be ARM64 or X86_64."
  }
}

variable "max_vcpu" {
  description = "Most vCPUs all running jobs of the application may hold at once (a cost ceiling: jobs wait beyond it)."
  type        = number
  default     = 64

  validation {
    condition     = var.max_vcpu >= 4
    error_message = "max_vcpu must be at least 4 (one driver and one executor)."
  }
}

variable "max_memory_gb" {
  description = "Most memory (GB) all running jobs may hold at once."
  type        = number
  default     = 256
}

variable "max_disk_gb" {
  description = "Most disk (GB) all running jobs may hold at once."
  type        = number
  default     = 1000
}

variable "idle_timeout_minutes" {
  description = "Minutes without a job before the application stops (auto-start brings it back on the next job; stopped costs nothing)."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080
    error_message = "idle_timeout_minutes must be between 1 and 10080."
  }
}

variable "vpc_id" {
  description = "VPC the workers run in."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (the registry's internal load balancer is inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the workers (no public IPs; S3 and AWS APIs through the network's NAT or endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give at least two private subnets (two availability zones)."
  }
}

variable "egress_cidr_blocks" {
  description = "Where the workers may open HTTPS (443): S3, Secrets Manager, CloudWatch Logs and the registry."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "registry_ports" {
  description = "Other TCP ports the workers may open inside the VPC (the registry's internal load balancer listens on 80 without a domain)."
  type        = list(number)
  default     = [80]
}

variable "registry_secret_arns" {
  description = "Secrets Manager secrets holding the registry credentials the jobs read (MLflow reader user)."
  type        = list(string)

  validation {
    condition     = length(var.registry_secret_arns) >= 1
    error_message = "Give the secret of the MLflow user the jobs read the registry as."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the bucket, the log group and the registry secret."
  type        = string
}

variable "bucket_name" {
  description = "Name of the batch bucket; null means <name>-<account id>."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "Bucket for S3 server access logs of the batch bucket; null turns them off."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform delete the batch bucket with its objects (never in production)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days CloudWatch and the logs/ prefix keep job logs."
  type        = number
  default     = 365
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary set on the job role; null sets none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource on top of the provider's default tags."
  type        = map(string)
  default     = {}
}
