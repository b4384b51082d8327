# One IAM role a GitHub Actions job assumes through OIDC (no static keys), and its inline
# policies. The trust policy is the only gate between a workflow and AWS, so it is built here,
# once, from the repository's customised OIDC subject template.
#
# The bootstrap sets the repository's template to include_claim_keys ["repo", "context", "ref"]
# (PUT /repos/OWNER/REPO/actions/oidc/customization/sub). GitHub then joins the claims in that
# order, each as `key:value`, and `context` is what follows the repository in the default
# subject (GitHub docs, "OpenID Connect reference" > "Customizing the subject claims"):
#   job with `environment: E` on main    repo:OWNER/REPO:environment:E:ref:refs/heads/main
#   pull_request job (no environment)    repo:OWNER/REPO:pull_request:ref:refs/pull/N/merge
# A role bound to an environment therefore also pins the branch: a job that names the
# environment from another branch (or a pull request) carries another `ref` and is refused,
# even if the environment's deployment-branch rule were loosened.

locals {
  repo_subject = "repo:${var.github_repository}"

  # Exact subjects (StringEquals): environment + ref.
  exact_subjects = var.github_environment == null ? [] : [
    "${local.repo_subject}:environment:${var.github_environment}:ref:${var.github_ref}"
  ]
  # Pull request jobs: the merge ref carries the PR number, hence the one wildcard (StringLike).
  pattern_subjects = var.trust_pull_requests ? ["${local.repo_subject}:pull_request:ref:refs/pull/*/merge"] : []
}

data "aws_iam_policy_document" "trust" {
  dynamic "statement" {
    for_each = { for k, v in { exact = local.exact_subjects, pattern = local.pattern_subjects } : k => v if length(v) > 0 }
    content {
      sid     = statement.key == "exact" ? "GithubEnvironmentOnRef" : "GithubPullRequests"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [var.oidc_provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${var.oidc_host}:aud"
        values   = ["sts.amazonaws.com"]
      }

      condition {
        test     = statement.key == "exact" ? "StringEquals" : "StringLike"
        variable = "${var.oidc_host}:sub"
        values   = statement.value
      }
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = var.description
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = length(local.exact_subjects) + length(local.pattern_subjects) > 0
      error_message = "Role ${var.name} would trust no GitHub job: set github_environment or trust_pull_requests."
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = var.policies

  name   = each.key
  role   = aws_iam_role.this.id
  policy = each.value
}
