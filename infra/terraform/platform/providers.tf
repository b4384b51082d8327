provider "aws" {
  region              = var.aws_region
  allowed_account_ids = var.aws_account_id == null ? null : [var.aws_account_id]

  default_tags {
    tags = {
      project     = var.project
      environment = "platform"
      managed-by  = "terraform"
    }
  }
}
