# What an environment's terraform roles need for its online feature store (modules/feature_store,
# stack/main.tf `feature_store_enabled`): the ElastiCache replication group, its parameter and
# subnet groups and member nodes, all named <prefix>-features*; the service-linked role
# ElastiCache creates on first use; a grant on the platform key for encryption at rest; and the
# value of the store's AUTH token secret, which the module reads at plan and apply (ElastiCache's
# auth_token has no write-only form in the AWS provider 5.x). Only that secret's value: the API's
# and MLflow's stay out of reach of both roles. The rest of each role's policy is
# terraform_roles.tf; the API's execution role reads the token through the environment's boundary
# (iam.tf, ReadOwnSecrets).
#
# ElastiCache cannot be applied on moto (no parameter groups there), so
# tests/integration/test_iam_least_privilege.py evaluates the requests a create, a change and a
# destroy of the store make (listed there, from the provider's calls) against these documents.

locals {
  elasticache_arn = "arn:${local.partition}:elasticache:${local.region}:${local.account_id}"
  feature_store = {
    for e, prefix in local.env_prefix : e => {
      replication_group = "${local.elasticache_arn}:replicationgroup:${prefix}-features"
      nodes             = "${local.elasticache_arn}:cluster:${prefix}-features-*"
      parameter_group   = "${local.elasticache_arn}:parametergroup:${prefix}-features-redis7"
      subnet_group      = "${local.elasticache_arn}:subnetgroup:${prefix}-features"
      snapshots         = "${local.elasticache_arn}:snapshot:automatic.${prefix}-features-*"
      token             = "${local.arn.secretsmanager}:secret:${prefix}/feature-store-token-*"
    }
  }
}

data "aws_iam_policy_document" "apply_feature_store" {
  for_each = local.feature_store

  # Created only encrypted in transit and at rest, with an AUTH token (the module's settings).
  # These condition keys exist on the replication group only: the groups and nodes the same
  # CreateReplicationGroup names are authorized by the next statement, which a Bool condition
  # there would deny (the key is absent for them).
  statement {
    sid       = "CreateEncryptedFeatureStore"
    actions   = ["elasticache:CreateReplicationGroup"]
    resources = [each.value.replication_group]

    condition {
      test     = "Bool"
      variable = "elasticache:TransitEncryptionEnabled"
      values   = ["true"]
    }
    condition {
      test     = "Bool"
      variable = "elasticache:AtRestEncryptionEnabled"
      values   = ["true"]
    }
    condition {
      test     = "Bool"
      variable = "elasticache:AuthTokenEnabled"
      values   = ["true"]
    }
  }

  statement {
    sid       = "FeatureStoreParts"
    actions   = ["elasticache:CreateReplicationGroup"]
    resources = [each.value.nodes, each.value.parameter_group, each.value.subnet_group]
  }

  statement {
    sid = "OwnFeatureStore"
    actions = [
      "elasticache:AddTagsToResource",
      "elasticache:CreateCacheParameterGroup",
      "elasticache:CreateCacheSubnetGroup",
      "elasticache:DecreaseReplicaCount",
      "elasticache:DeleteCacheParameterGroup",
      "elasticache:DeleteCacheSubnetGroup",
      "elasticache:DeleteReplicationGroup",
      "elasticache:DescribeCacheClusters",
      "elasticache:DescribeCacheParameterGroups",
      "elasticache:DescribeCacheParameters",
      "elasticache:DescribeCacheSubnetGroups",
      "elasticache:DescribeReplicationGroups",
      "elasticache:IncreaseReplicaCount",
      "elasticache:ListTagsForResource",
      "elasticache:ModifyCacheParameterGroup",
      "elasticache:ModifyCacheSubnetGroup",
      "elasticache:ModifyReplicationGroup",
      "elasticache:RemoveTagsFromResource",
    ]
    resources = [each.value.replication_group, each.value.nodes, each.value.parameter_group, each.value.subnet_group, each.value.snapshots]
  }

  statement {
    sid       = "ElastiCacheServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.iam_arn}:role/aws-service-role/elasticache.amazonaws.com/AWSServiceRoleForElastiCache"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticache.amazonaws.com"]
    }
  }

  # Encryption at rest with the platform key: ElastiCache's grant, through ElastiCache only.
  statement {
    sid       = "PlatformKeyForElastiCache"
    actions   = ["kms:CreateGrant", "kms:DescribeKey"]
    resources = [module.kms.key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["elasticache.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "FeatureStoreToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [each.value.token]
  }
}

data "aws_iam_policy_document" "plan_feature_store" {
  for_each = local.feature_store

  statement {
    sid = "ReadFeatureStore"
    actions = [
      "elasticache:DescribeCacheClusters",
      "elasticache:DescribeCacheParameterGroups",
      "elasticache:DescribeCacheParameters",
      "elasticache:DescribeCacheSubnetGroups",
      "elasticache:DescribeReplicationGroups",
      "elasticache:ListTagsForResource",
    ]
    resources = [each.value.replication_group, each.value.nodes, each.value.parameter_group, each.value.subnet_group]
  }

  # The module's data source reads the token at plan too (see the top of this file).
  statement {
    sid       = "FeatureStoreToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [each.value.token]
  }
}

resource "aws_iam_role_policy" "apply_feature_store" {
  for_each = local.feature_store

  name   = "feature-store"
  role   = module.role_terraform[each.key].name
  policy = data.aws_iam_policy_document.apply_feature_store[each.key].json
}

resource "aws_iam_role_policy" "plan_feature_store" {
  for_each = local.feature_store

  name   = "feature-store"
  role   = module.role_plan[each.key].name
  policy = data.aws_iam_policy_document.plan_feature_store[each.key].json
}
