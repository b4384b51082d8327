# The account's GitHub Actions OIDC identity provider. There is one per account and URL, so it
# lives in the platform root; the roles that trust it (modules/github_role) live next to what
# they may touch.

locals {
  oidc_host = "token.actions.githubusercontent.com"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}
