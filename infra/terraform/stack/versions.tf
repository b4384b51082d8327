terraform {
  # use_lockfile (S3-native state locking) needs 1.10.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, key and region come from envs/<env>.backend.hcl (see
  # envs/<env>.backend.hcl.example) or from the TF_STATE_* variables that `make tf-init` passes.
  # The lock is a lock file next to the state object (S3 conditional writes), no DynamoDB.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}
