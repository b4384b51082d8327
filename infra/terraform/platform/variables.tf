variable "aws_region" {
  description = "AWS region of the platform and of every environment."
  type        = string
  default     = "eu-west-1"
}

variable "aws_account_id" {
  description = "AWS account the platform must live in; terraform refuses other credentials. null skips the check."
  type        = string
  default     = null
}

variable "project" {
  description = "Project name: first part of every resource name and the project tag."
  type        = string
  default     = "credit-risk"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environments" {
  description = "The per-environment roots (stack/ with envs/<env>.tfvars) whose roles, boundaries and plan access the platform creates."
  type        = list(string)
  default     = ["staging", "production"]

  validation {
    condition     = length(var.environments) > 0 && alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9-]{1,15}$", e)) && e != "platform"])
    error_message = "environments must be short lowercase names, and none may be called platform."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the roles."
  type        = string
}

variable "state_bucket_name" {
  description = "S3 bucket of the terraform state of every root (created by the bootstrap); each role gets only its root's key."
  type        = string
}

variable "state_key_prefix" {
  description = "Key prefix of the states: <prefix><root>/terraform.tfstate for root platform, staging, production."
  type        = string
  default     = "credit-risk/"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/$", var.state_key_prefix))
    error_message = "state_key_prefix must be one path segment ending in /, for example credit-risk/."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider; false when it already exists (then set oidc_provider_arn)."
  type        = bool
  default     = true
}

variable "oidc_provider_arn" {
  description = "ARN of the existing GitHub OIDC provider when create_oidc_provider is false."
  type        = string
  default     = null
}

variable "github_release_environment" {
  description = "GitHub environment of the CD job that pushes images and deploys MLflow (the release role trusts only it, on main)."
  type        = string
  default     = "release"
}

variable "github_retrain_environment" {
  description = "GitHub environment of the retrain workflow (the train role trusts only it, on main)."
  type        = string
  default     = "retrain"
}

variable "github_terraform_environment_prefix" {
  description = "Prefix of the GitHub environments whose approved jobs apply a root: <prefix><root> (infrastructure-platform, infrastructure-staging, ...)."
  type        = string
  default     = "infrastructure-"
}

variable "vpc_cidr_block" {
  description = "IPv4 CIDR of the one VPC that MLflow and every environment's API run in."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the database and load balancers from deletion."
  type        = bool
  default     = true
}

variable "mlflow_image" {
  description = "MLflow server image CD pushed: <ecr_mlflow_repository_url>@sha256:<digest> (or :<git sha> / :release-<git sha>). null until the first image is pushed (README, bootstrap): then everything but MLflow's ECS service is created."
  type        = string
  default     = null

  validation {
    condition     = var.mlflow_image == null || can(regex("^[^\\s@]+(@sha256:[0-9a-f]{64}|:(release-)?[0-9a-f]{40})$", var.mlflow_image))
    error_message = "mlflow_image must be an image CD pushed, by digest (<repository>@sha256:<64 hex>) or immutable tag (:<40-hex git sha> or :release-<40-hex git sha); a placeholder such as :bootstrap or :latest is refused, since nothing pushes it."
  }
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

  validation {
    condition     = !contains(var.mlflow_allowed_cidr_blocks, "0.0.0.0/0")
    error_message = "mlflow_allowed_cidr_blocks must not contain 0.0.0.0/0: the registry is reachable only from named networks."
  }
}

variable "mlflow_certificate_arn" {
  description = "ACM certificate for MLflow's HTTPS listener; null serves HTTP (only acceptable with an internal load balancer)."
  type        = string
  default     = null

  validation {
    condition     = var.mlflow_certificate_arn != null || var.domain_name != null || !var.mlflow_public_endpoint
    error_message = "A public MLflow endpoint needs a certificate (domain_name + route53_zone_id, or mlflow_certificate_arn): basic-auth credentials must never cross the internet in clear text."
  }
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

variable "training_data_s3_arns" {
  description = "S3 object ARNs (may end in /*) the retrain job reads its data from (ML data source s3://...); empty gives the train role no S3 access."
  type        = list(string)
  default     = []
}

variable "domain_name" {
  description = "DNS domain the platform's names live under: MLflow is mlflow.<domain_name>, an environment's API api.<environment>.<domain_name>. null (bootstrap only): MLflow keeps its internal load balancer's name."
  type        = string
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS domain such as ml.example.com."
  }
}

variable "route53_zone_id" {
  description = "Public Route 53 hosted zone of domain_name: the names' alias records and their certificates' DNS validation records go there."
  type        = string
  default     = null

  validation {
    condition     = (var.route53_zone_id == null) == (var.domain_name == null)
    error_message = "Set domain_name and route53_zone_id together (the zone that holds the domain)."
  }
}

variable "github_connection_arn" {
  description = "AWS CodeConnections connection to GitHub (AVAILABLE) the in-VPC CodeBuild runners register through; null: no runner yet (bootstrap)."
  type        = string
  default     = null
}

variable "codebuild_runner_project" {
  description = "CodeBuild project of the in-VPC runners; must equal runners.codebuild_project in config/platform.yaml (the workflows' runs-on: codebuild-<project>-...)."
  type        = string
  default     = "credit-risk-gha-runner"
}

variable "mlflow_replace_tasks_on_rotation" {
  description = "Replace MLflow's tasks after each rotation of its database password (modules/mlflow/rotation.tf); false only where Step Functions is unavailable (the moto tests)."
  type        = bool
  default     = true
}

variable "spark_enabled" {
  description = "Create the EMR Serverless application for Spark batch scoring and training (modules/emr_serverless, docs/spark.md), its job role, batch bucket and registry secret."
  type        = bool
  default     = false
}

variable "spark_release_label" {
  description = "EMR release of the Spark application: emr-7.x (Spark 3.5, the `spark` extra's pyspark)."
  type        = string
  default     = "emr-7.5.0"

  validation {
    condition     = can(regex("^emr-7\\.[0-9]+\\.[0-9]+$", var.spark_release_label))
    error_message = "spark_release_label must be an emr-7.x release (Spark 3.5), e.g. emr-7.5.0: the jobs' pyspark is 3.5."
  }
}

variable "spark_architecture" {
  description = "Worker architecture of the Spark application: ARM64 (Graviton, cheaper) or X86_64."
  type        = string
  default     = "ARM64"
}

variable "spark_max_vcpu" {
  description = "Most vCPUs the Spark application's running jobs may hold together (a cost ceiling; memory is 4 GB per vCPU)."
  type        = number
  default     = 64
}

variable "spark_idle_timeout_minutes" {
  description = "Minutes without a job before the Spark application stops (it starts again on the next job)."
  type        = number
  default     = 15
}
