variable "name" {
  description = "Fully qualified DNS name (api.staging.example.com): the certificate's subject and the alias record."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.name))
    error_message = "name must be a lowercase fully qualified DNS name such as api.staging.example.com."
  }
}

variable "zone_id" {
  description = "Public Route 53 hosted zone holding the name (ACM validates through it)."
  type        = string
}

variable "target_dns_name" {
  description = "DNS name of the load balancer the name points to."
  type        = string
}

variable "target_zone_id" {
  description = "Route 53 zone ID of that load balancer (its canonical hosted zone)."
  type        = string
}

variable "certificate_arn" {
  description = "An ACM certificate that already covers name (a wildcard, an imported one); null: ACM issues one, validated in zone_id."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the certificate."
  type        = map(string)
  default     = {}
}
