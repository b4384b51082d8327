variable "endpoint_url" {
  description = "Base URL of the moto server (http://127.0.0.1:<port>)."
  type        = string
}

variable "aws_region" {
  description = "Region the provider and moto use."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix of the test resources."
  type        = string
  default     = "tf-spark"
}
