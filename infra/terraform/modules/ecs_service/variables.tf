variable "name" {
  description = "Name of the service; also the task definition family, log group and name prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,62}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the service runs on."
  type        = string
}

variable "cluster_name" {
  description = "Name of the ECS cluster (autoscaling addresses the service by cluster and service name)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer, target group and security groups."
  type        = string
}

variable "alb_subnet_ids" {
  description = "Subnets of the load balancer: public subnets for an internet-facing ALB, private for internal."
  type        = list(string)

  validation {
    condition     = length(var.alb_subnet_ids) >= 2
    error_message = "An ALB needs subnets in at least two availability zones."
  }
}

variable "task_subnet_ids" {
  description = "Private subnets the tasks run in (no public IPs are assigned)."
  type        = list(string)
}

variable "internal" {
  description = "Make the load balancer internal (reachable only inside the VPC)."
  type        = bool
  default     = false
}

variable "ingress_cidr_blocks" {
  description = "IPv4 CIDRs allowed to reach the load balancer's listener."
  type        = list(string)
  default     = []
}

variable "ingress_security_group_ids" {
  description = "Security groups allowed to reach the load balancer's listener."
  type        = list(string)
  default     = []
}

variable "https" {
  description = "Serve HTTPS with certificate_arn; null: whenever certificate_arn is set. Set it when the certificate is created in the same apply (its ARN is unknown at plan time)."
  type        = bool
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener (port 80 then redirects); null serves plain HTTP on port 80."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "access_logs_bucket" {
  description = "S3 bucket (with the ELB log-delivery policy) for ALB access logs; null turns them off."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion (switch off before destroying the environment)."
  type        = bool
  default     = true
}

variable "container_name" {
  description = "Name of the container in the task definition; CD swaps the image of this container."
  type        = string
  default     = "app"
}

variable "container_image" {
  description = "Image the first task definition revision runs: a digest (<repo>@sha256:...) or an immutable git-SHA or release-<sha> tag CD pushed; CD replaces it with each deployment. null creates no task definition and no service yet."
  type        = string
  default     = null

  validation {
    # A mutable or invented tag (latest, bootstrap, ...) is the classic service that never starts.
    condition     = var.container_image == null || can(regex("^[^\\s@]+(@sha256:[0-9a-f]{64}|:(release-)?[0-9a-f]{40})$", var.container_image))
    error_message = "container_image must be <repository>@sha256:<digest> or <repository>:<40-hex git sha> / :release-<40-hex git sha> (an image CD pushed), not a mutable tag such as latest or bootstrap."
  }
}

variable "container_port" {
  description = "TCP port the container listens on."
  type        = number
  default     = 8000
}

variable "command" {
  description = "Command overriding the image's CMD; null keeps the image's own."
  type        = list(string)
  default     = null
}

variable "container_user" {
  description = "uid:gid the container runs as; must not be root."
  type        = string
  default     = "10001:10001"

  validation {
    condition     = !contains(["root", "0", "0:0"], var.container_user)
    error_message = "The container must not run as root."
  }
}

variable "readonly_root_filesystem" {
  description = "Mount the container's root filesystem read-only (writable_paths stay writable)."
  type        = bool
  default     = true
}

variable "writable_paths" {
  description = "Paths backed by the task's ephemeral storage, writable despite a read-only root filesystem."
  type        = list(string)
  default     = ["/tmp"]
}

variable "environment" {
  description = "Plain environment variables of the container (no secrets: use secrets)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables filled from Secrets Manager or SSM at start: name => valueFrom ARN (may end in :json-key::)."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "ARNs of the secrets named in secrets, which the execution role may read."
  type        = list(string)
  default     = []
}

variable "decrypt_kms_key_arns" {
  description = "KMS keys the execution role may decrypt with (customer-managed keys of secrets or images)."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the execution role may pull from."
  type        = list(string)
  default     = []
}

variable "task_role_policies" {
  description = "Inline policies of the task role (the application's own AWS permissions): name => policy JSON."
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "Fargate task CPU units (256, 512, 1024, 2048, 4096)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory in MiB, valid for the chosen cpu."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "CPU architecture of the task: X86_64 or ARM64 (must match the image)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_count" {
  description = "Tasks at creation; afterwards autoscaling owns the count."
  type        = number
  default     = 2
}

variable "min_capacity" {
  description = "Fewest tasks autoscaling keeps."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Most tasks autoscaling starts."
  type        = number
  default     = 6

  validation {
    condition     = var.max_capacity >= 1
    error_message = "max_capacity must be at least 1."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation autoscaling aims for."
  type        = number
  default     = 60
}

variable "requests_per_target" {
  description = "ALB requests per task per minute (ALBRequestCountPerTarget) autoscaling aims for: the task's measured sustainable rate at the latency goal times a headroom factor (the stack derives it, docs/deploy.md#autoscaling); 0 turns request-count scaling off."
  type        = number
  default     = 1000

  validation {
    condition     = var.requests_per_target >= 0
    error_message = "requests_per_target must be 0 (off) or a positive number of requests per task per minute."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scaling activity before target tracking may remove another task (scale-in protection against a burst's tail)."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown_seconds >= 60
    error_message = "scale_in_cooldown_seconds must be at least 60: the metrics are per minute."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before target tracking adds more tasks (a new task needs about a minute to start and warm its model)."
  type        = number
  default     = 60
}

variable "health_check_path" {
  description = "Path the target group probes; 200 means the task may receive traffic."
  type        = string
  default     = "/ready"
}

variable "health_check_grace_period_seconds" {
  description = "Seconds after a task starts during which failed load-balancer health checks are ignored (model warm-up)."
  type        = number
  default     = 60
}

variable "egress_vpc_ports" {
  description = "TCP ports the tasks may open to addresses inside the VPC (for example internal load balancers)."
  type        = list(number)
  default     = [80, 443]
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the container logs."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log group; null uses CloudWatch's default encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource on top of the provider's default tags."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary set on the task and execution roles (the environment's terraform role may only create roles that carry it); null sets none."
  type        = string
  default     = null
}
