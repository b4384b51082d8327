# The EMR Serverless module applied against moto (AWS emulated on 127.0.0.1) by
# tests/integration/test_spark_infra.py: the real emr_serverless and kms modules in a small VPC,
# with the registry secret the platform gives it. Credentials are dummies from the environment.

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
    ec2            = var.endpoint_url
    emrserverless  = var.endpoint_url
    iam            = var.endpoint_url
    kms            = var.endpoint_url
    logs           = var.endpoint_url
    s3             = var.endpoint_url
    secretsmanager = var.endpoint_url
    sts            = var.endpoint_url
  }

  default_tags {
    tags = {
      project     = "credit-risk"
      environment = "moto-test"
      managed-by  = "terraform"
    }
  }
}

resource "aws_vpc" "this" {
  cidr_block = "10.60.0.0/16"
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(aws_vpc.this.cidr_block, 8, count.index)
  availability_zone = "${var.aws_region}${["a", "b"][count.index]}"
}

module "kms" {
  source = "../../modules/kms"

  name        = var.name
  description = "Test key of the Spark module"
}

resource "aws_secretsmanager_secret" "registry" {
  #checkov:skip=CKV2_AWS_57:A test secret in moto; the platform's is seeded and rotated by re-seeding.
  name_prefix             = "${var.name}-batch/mlflow-reader-"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 0
}

module "spark" {
  source = "../../modules/emr_serverless"

  name                 = "${var.name}-batch"
  vpc_id               = aws_vpc.this.id
  vpc_cidr_block       = aws_vpc.this.cidr_block
  subnet_ids           = aws_subnet.private[*].id
  registry_secret_arns = [aws_secretsmanager_secret.registry.arn]
  kms_key_arn          = module.kms.key_arn
  force_destroy        = true
}
