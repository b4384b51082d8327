variable "environment" {
  description = "Environment this state describes: names every resource, the GitHub environment the deploy role trusts, and the registry alias the API serves."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "aws_region" {
  description = "AWS region (the platform's)."
  type        = string
  default     = "eu-west-1"
}

variable "aws_account_id" {
  description = "AWS account the environment must live in; terraform refuses other credentials. null skips the check."
  type        = string
  default     = null
}

variable "project" {
  description = "Project name: first part of every resource name, the project tag, and the platform parameter's path."
  type        = string
  default     = "credit-risk"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose jobs in the GitHub environment named like this one may assume the deploy role."
  type        = string
}

variable "model_name" {
  description = "Registered model the API serves (SERVE_MODEL_NAME); it follows the alias named like the environment."
  type        = string
  default     = "credit-risk"
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "api_image" {
  description = "Serve image the first task definition revision runs: <ecr_serve_repository_url>@sha256:<digest> (or :<git sha> / :release-<git sha>), an image CD pushed. CD deploys every later release; null creates no service yet (bootstrap)."
  type        = string
  default     = null

  validation {
    condition     = var.api_image == null || can(regex("^[^\\s@]+(@sha256:[0-9a-f]{64}|:(release-)?[0-9a-f]{40})$", var.api_image))
    error_message = "api_image must be an image CD pushed, by digest (<repository>@sha256:<64 hex>) or immutable tag (:<40-hex git sha> or :release-<40-hex git sha); a placeholder such as :bootstrap or :latest is refused."
  }
}

variable "api_allowed_cidr_blocks" {
  description = "IPv4 CIDRs that may call the prediction API (the callers' egress ranges). Required: there is no open default, and production refuses 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = length(var.api_allowed_cidr_blocks) > 0 && alltrue([for c in var.api_allowed_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "api_allowed_cidr_blocks must list at least one valid IPv4 CIDR."
  }

  validation {
    condition     = var.environment != "production" || !contains(var.api_allowed_cidr_blocks, "0.0.0.0/0")
    error_message = "Production must not open the API to 0.0.0.0/0: list the callers' CIDRs in envs/production.tfvars (api_allowed_cidr_blocks)."
  }
}

variable "api_certificate_arn" {
  description = "An ACM certificate that already covers api.<environment>.<domain_name> (a wildcard, an imported one); null: ACM issues one, validated in route53_zone_id."
  type        = string
  default     = null

  validation {
    condition     = var.api_certificate_arn == null || var.domain_name != null
    error_message = "api_certificate_arn needs domain_name and route53_zone_id: the smoke and e2e tests call the API by the name the certificate covers, never by the load balancer's name."
  }

  validation {
    condition     = var.api_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.api_certificate_arn))
    error_message = "api_certificate_arn must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)."
  }
}

variable "api_environment" {
  description = "Extra plain environment variables of the API container (no secrets: those come from Secrets Manager); SERVE_ENVIRONMENT, MLFLOW_TRACKING_URI, SERVE_MODEL_NAME and SERVE_MODEL_ALIAS are set by this root and cannot be overridden."
  type        = map(string)
  default     = {}

  validation {
    condition     = length([for k in keys(var.api_environment) : k if can(regex("(?i)token|password|secret|key", k))]) == 0
    error_message = "api_environment must not carry secrets (a name with token, password, secret or key): put them in Secrets Manager."
  }
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

  validation {
    condition     = var.api_max_capacity >= var.api_min_capacity
    error_message = "api_max_capacity must be at least api_min_capacity."
  }
}

variable "api_requests_per_second_per_vcpu" {
  description = "Measured sustainable /predict rate of one API worker per vCPU, single records, at the latency goal: `make bench-serve`, one worker, wrk c=8, idle 2-vCPU VM: 2,296 req/s at p99 6.3 ms (docs/performance.md). The request-count autoscaling target is this x the task's vCPUs (api_cpu / 1024) x api_scaling_headroom x 60 (per minute): 2,300 x 0.5 x 0.5 x 60 = 34,500 requests per task per minute with the defaults. Re-measure against a staging task and set it here (docs/deploy.md#autoscaling)."
  type        = number
  default     = 2300

  validation {
    condition     = var.api_requests_per_second_per_vcpu > 0
    error_message = "api_requests_per_second_per_vcpu must be a measured positive rate."
  }
}

variable "api_scaling_headroom" {
  description = "Fraction of a task's measured capacity autoscaling aims to use (0.5: a task runs at half its measured rate, so traffic can double during the 1-2 minutes a scale-out takes before latency suffers; it also absorbs the difference between the benchmark VM's core and a Fargate vCPU)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.api_scaling_headroom > 0 && var.api_scaling_headroom <= 0.9
    error_message = "api_scaling_headroom must be in (0, 0.9]: above 0.9 a task is at capacity before a new one starts."
  }
}

variable "api_scale_in_cooldown_seconds" {
  description = "Seconds autoscaling waits after a scaling activity before removing another API task."
  type        = number
  default     = 300
}

variable "feature_store_enabled" {
  description = "Create the online feature store (ElastiCache Redis, TLS + AUTH) and turn on POST /predict/by-id. Its token secret exists (and is seeded by make tf-seed-secrets) beforehand."
  type        = bool
  default     = false
}

variable "feature_store_node_type" {
  description = "Cache node type of the online feature store."
  type        = string
  default     = "cache.t4g.small"
}

variable "feature_store_replicas" {
  description = "Read replicas of the online feature store in other zones (automatic failover when > 0)."
  type        = number
  default     = 1
}

variable "domain_name" {
  description = "DNS domain of the platform (the platform root's domain_name): the API is https://api.<environment>.<domain_name>. Mandatory in production; null (staging only) keeps the API on an internal load balancer, reachable in the VPC only (the in-VPC runners)."
  type        = string
  default     = null

  validation {
    condition     = var.environment != "production" || var.domain_name != null
    error_message = "Production serves the API over HTTPS under its own name: set domain_name and route53_zone_id in envs/production.tfvars (api.production.<domain_name> gets an ACM certificate; no certificate can name a load balancer's *.elb.amazonaws.com)."
  }

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS domain such as ml.example.com."
  }
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone of domain_name (the alias record and the certificate's validation records)."
  type        = string
  default     = null

  validation {
    condition     = (var.route53_zone_id == null) == (var.domain_name == null)
    error_message = "Set domain_name and route53_zone_id together (the zone that holds the domain)."
  }
}
