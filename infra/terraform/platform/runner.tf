# Where the jobs that talk to the registry run (config/platform.yaml `runners`). Default
# (registry: in-vpc): AWS CodeBuild-hosted GitHub Actions runners in the private subnets, so
# MLflow's load balancer stays internal. The runner needs the GitHub connection a person
# authorises once (infra/terraform/README.md, bootstrap); until github_connection_arn is set
# there is no runner and the registry jobs queue with nobody to run them, which every plan says.

module "codebuild_runner" {
  source = "../modules/codebuild_runner"
  count  = var.github_connection_arn == null ? 0 : 1

  name                  = var.codebuild_runner_project
  github_repository     = var.github_repository
  github_connection_arn = var.github_connection_arn
  vpc_id                = module.network.vpc_id
  vpc_cidr_block        = module.network.vpc_cidr_block
  subnet_ids            = module.network.private_subnet_ids
  kms_key_arn           = module.kms.key_arn
}

check "registry_runner_exists" {
  assert {
    condition     = var.github_connection_arn != null || var.mlflow_public_endpoint
    error_message = "No runner can reach the private registry yet: authorise the GitHub connection (infra/terraform/README.md, bootstrap) and set github_connection_arn in envs/platform.tfvars, or choose the public endpoint (config/platform.yaml runners)."
  }
}
