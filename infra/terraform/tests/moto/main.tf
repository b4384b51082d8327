# A small root applied against moto (AWS emulated on 127.0.0.1) by
# tests/integration/test_terraform_moto.py: the real ecr module plus the resource types moto
# implements well (S3, ECS cluster, IAM). Credentials are dummies from the environment.

terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.aws_region

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    ecr = var.endpoint_url
    ecs = var.endpoint_url
    iam = var.endpoint_url
    s3  = var.endpoint_url
    sts = var.endpoint_url
  }

  default_tags {
    tags = {
      project     = "credit-risk"
      environment = "moto-test"
      managed-by  = "terraform"
    }
  }
}

module "ecr" {
  source = "../../modules/ecr"

  name            = "${var.name}/api"
  encryption_type = "AES256"
  max_image_count = 10
  force_delete    = true
}

resource "aws_s3_bucket" "artifacts" {
  bucket        = "${var.name}-artifacts"
  force_destroy = true
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_ecs_cluster" "this" {
  name = var.name
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}
