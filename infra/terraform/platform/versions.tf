terraform {
  # use_lockfile (S3-native state locking) needs 1.10.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, region and key (credit-risk/platform/terraform.tfstate) come
  # from `make tf-init ROOT=platform` (TF_STATE_BUCKET, TF_STATE_REGION) or
  # envs/platform.backend.hcl. The lock is a lock file next to the state object, no DynamoDB.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}
