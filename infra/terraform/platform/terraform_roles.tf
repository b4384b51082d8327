# The roles that plan and apply each root: one plan role and one apply role per root, each with
# its own state key only. A staging apply (GitHub environment infrastructure-staging, approved)
# cannot assume the production role; a pull request's plan of one root reads neither another
# root's state nor any model artefact nor any secret value.
#
# The action lists are what terraform calls for each root, recorded under moto by
# tests/integration/test_iam_least_privilege.py (plan, apply), plus the update and delete
# counterparts an apply of a change or a removal calls (granted by reasoning, named per
# statement). Where IAM can scope a resource by name (ECS, IAM, logs, secrets, SSM, ECR, S3,
# KMS alias) the statements do; EC2 and ELB resources carry IDs AWS assigns, so those are scoped
# by the environment tag (ABAC: aws:RequestTag on create, aws:ResourceTag after) instead.

locals {
  ec2_reads = [
    "ec2:DescribeAddresses",
    "ec2:DescribeAddressesAttribute",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcs",
  ]
  elb_reads = [
    "elasticloadbalancing:DescribeCapacityReservation",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
  ]
  # Read actions IAM scopes to no resource (wildcard-only in the service authorization
  # reference): every plan and apply role gets them on "*"; none of them returns data values.
  wildcard_reads = concat(local.ec2_reads, local.elb_reads, [
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "ecs:DescribeTaskDefinition",
    "logs:DescribeLogGroups",
  ])

  # Resources of an environment root, by its name prefix (credit-risk-<env>).
  env = {
    for e, prefix in local.env_prefix : e => {
      cluster       = "${local.arn.ecs}:cluster/${prefix}"
      services      = "${local.arn.ecs}:service/${prefix}/*"
      families      = "${local.arn.ecs}:task-definition/${prefix}-*:*"
      roles         = "${local.iam_arn}:role/${prefix}-*"
      log_groups    = "${local.arn.logs}:log-group:/ecs/${prefix}-*"
      secrets       = "${local.arn.secretsmanager}:secret:${prefix}/*"
      alarms        = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:TargetTracking-service/${prefix}/*"
      load_balancer = "${local.arn.elasticloadbalancing}:loadbalancer/app/${prefix}-*/*"
      listeners     = "${local.arn.elasticloadbalancing}:listener/app/${prefix}-*/*"
      target_groups = "${local.arn.elasticloadbalancing}:targetgroup/*/*"
      env_tag       = { test = "StringEquals", variable = "aws:ResourceTag/environment", values = [e] }
      new_env_tag   = { test = "StringEquals", variable = "aws:RequestTag/environment", values = [e] }
    }
  }
  service_linked_roles = {
    test     = "StringEquals"
    variable = "iam:AWSServiceName"
    values = [
      "ecs.amazonaws.com",
      "ecs.application-autoscaling.amazonaws.com",
      "elasticloadbalancing.amazonaws.com",
      "rds.amazonaws.com",
    ]
  }

  # --- terraform apply of an environment root ---
  env_apply_statements = {
    for e, r in local.env : e => [
      { sid = "PlatformOutputs", actions = ["ssm:GetParameter"], resources = [local.platform_parameter], conditions = [] },
      { sid = "WildcardOnlyReads", actions = concat(local.wildcard_reads, ["ecs:DeregisterTaskDefinition"]), resources = ["*"], conditions = [] },
      # Security groups: created in the platform VPC with the environment's tag, changed only
      # while they carry it.
      {
        sid        = "CreateOwnSecurityGroups"
        actions    = ["ec2:CreateSecurityGroup"]
        resources  = ["${local.arn.ec2}:security-group/*", "${local.arn.ec2}:vpc/${module.network.vpc_id}"]
        conditions = [r.new_env_tag]
      },
      {
        sid = "ChangeOwnSecurityGroups"
        actions = [
          "ec2:AuthorizeSecurityGroupEgress",
          "ec2:AuthorizeSecurityGroupIngress",
          "ec2:DeleteSecurityGroup",
          "ec2:ModifySecurityGroupRules",
          "ec2:RevokeSecurityGroupEgress",
          "ec2:RevokeSecurityGroupIngress",
          "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
          "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
        ]
        resources  = ["${local.arn.ec2}:security-group/*"]
        conditions = [r.env_tag]
      },
      {
        sid        = "NewSecurityGroupRules"
        actions    = ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:ModifySecurityGroupRules"]
        resources  = ["${local.arn.ec2}:security-group-rule/*"]
        conditions = []
      },
      {
        sid       = "TagOnCreateEc2"
        actions   = ["ec2:CreateTags"]
        resources = ["${local.arn.ec2}:security-group/*", "${local.arn.ec2}:security-group-rule/*"]
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]
        }]
      },
      # Load balancer, target group, listeners: created with the environment's tag, changed only
      # while they carry it.
      {
        sid        = "CreateOwnLoadBalancers"
        actions    = ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"]
        resources  = [r.load_balancer, r.target_groups]
        conditions = [r.new_env_tag]
      },
      {
        sid = "ChangeOwnLoadBalancers"
        actions = [
          "elasticloadbalancing:CreateListener",
          "elasticloadbalancing:DeleteListener",
          "elasticloadbalancing:DeleteLoadBalancer",
          "elasticloadbalancing:DeleteTargetGroup",
          "elasticloadbalancing:ModifyListener",
          "elasticloadbalancing:ModifyListenerAttributes",
          "elasticloadbalancing:ModifyLoadBalancerAttributes",
          "elasticloadbalancing:ModifyTargetGroup",
          "elasticloadbalancing:ModifyTargetGroupAttributes",
          "elasticloadbalancing:RemoveTags",
          "elasticloadbalancing:SetSecurityGroups",
          "elasticloadbalancing:SetSubnets",
        ]
        resources  = [r.load_balancer, r.listeners, r.target_groups]
        conditions = [r.env_tag]
      },
      {
        sid       = "TagOnCreateElb"
        actions   = ["elasticloadbalancing:AddTags"]
        resources = ["*"]
        conditions = [{
          test     = "StringEquals"
          variable = "elasticloadbalancing:CreateAction"
          values   = ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"]
        }]
      },
      # ECS: the environment's cluster, services and task definition families, by name.
      {
        sid = "OwnEcs"
        actions = [
          "ecs:CreateCluster",
          "ecs:CreateService",
          "ecs:DeleteCluster",
          "ecs:DeleteService",
          "ecs:DescribeClusters",
          "ecs:DescribeServices",
          "ecs:ListTagsForResource",
          "ecs:PutClusterCapacityProviders",
          "ecs:RegisterTaskDefinition",
          "ecs:TagResource",
          "ecs:UntagResource",
          "ecs:UpdateCluster",
          "ecs:UpdateService",
        ]
        resources  = [r.cluster, r.services, r.families]
        conditions = []
      },
      # IAM: roles named <prefix>-*, created and changed only with the environment's boundary.
      {
        sid       = "OwnRolesWithBoundary"
        actions   = ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"]
        resources = [r.roles]
        conditions = [{
          test     = "StringEquals"
          variable = "iam:PermissionsBoundary"
          values   = [aws_iam_policy.boundary[e].arn]
        }]
      },
      {
        sid = "OwnRoles"
        actions = [
          "iam:DeleteRole",
          "iam:GetRole",
          "iam:GetRolePolicy",
          "iam:ListAttachedRolePolicies",
          "iam:ListInstanceProfilesForRole",
          "iam:ListRolePolicies",
          "iam:TagRole",
          "iam:UntagRole",
          "iam:UpdateAssumeRolePolicy",
          "iam:UpdateRole",
          "iam:UpdateRoleDescription",
        ]
        resources  = [r.roles]
        conditions = []
      },
      {
        sid        = "PassOwnRolesToEcsTasks"
        actions    = ["iam:PassRole"]
        resources  = [r.roles]
        conditions = [local.passed_to_ecs_tasks]
      },
      { sid = "ServiceLinkedRoles", actions = ["iam:CreateServiceLinkedRole"], resources = ["*"], conditions = [local.service_linked_roles] },
      {
        sid = "OwnLogGroups"
        actions = [
          "logs:AssociateKmsKey",
          "logs:CreateLogGroup",
          "logs:DeleteLogGroup",
          "logs:DeleteRetentionPolicy",
          "logs:DisassociateKmsKey",
          "logs:ListTagsForResource",
          "logs:PutRetentionPolicy",
          "logs:TagResource",
          "logs:UntagResource",
        ]
        resources  = [r.log_groups]
        conditions = []
      },
      # Secrets: their metadata only. No GetSecretValue, no PutSecretValue: values are seeded
      # outside terraform (scripts/seed_secrets.py).
      {
        sid = "OwnSecretsMetadata"
        actions = [
          "secretsmanager:CreateSecret",
          "secretsmanager:DeleteSecret",
          "secretsmanager:DescribeSecret",
          "secretsmanager:GetResourcePolicy",
          "secretsmanager:TagResource",
          "secretsmanager:UntagResource",
          "secretsmanager:UpdateSecret",
        ]
        resources  = [r.secrets]
        conditions = []
      },
      {
        sid = "EcsServiceAutoScaling"
        actions = [
          "application-autoscaling:DeleteScalingPolicy",
          "application-autoscaling:DeregisterScalableTarget",
          "application-autoscaling:PutScalingPolicy",
          "application-autoscaling:RegisterScalableTarget",
        ]
        resources = ["*"]
        conditions = [{
          test     = "StringEquals"
          variable = "application-autoscaling:service-namespace"
          values   = ["ecs"]
        }]
      },
      {
        sid        = "ScalableTargetTags"
        actions    = ["application-autoscaling:ListTagsForResource", "application-autoscaling:TagResource", "application-autoscaling:UntagResource"]
        resources  = ["${local.arn.application-autoscaling}:scalable-target/*"]
        conditions = []
      },
      {
        sid        = "TargetTrackingAlarms"
        actions    = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"]
        resources  = [r.alarms]
        conditions = []
      },
    ]
  }

  # --- terraform plan of an environment root (refresh only: reads, no values) ---
  env_plan_statements = {
    for e, r in local.env : e => [
      { sid = "PlatformOutputs", actions = ["ssm:GetParameter"], resources = [local.platform_parameter], conditions = [] },
      { sid = "WildcardOnlyReads", actions = local.wildcard_reads, resources = ["*"], conditions = [] },
      { sid = "OwnEcs", actions = ["ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListTagsForResource"], resources = [r.cluster, r.services, r.families], conditions = [] },
      { sid = "OwnRoles", actions = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"], resources = [r.roles], conditions = [] },
      { sid = "OwnLogGroups", actions = ["logs:ListTagsForResource"], resources = [r.log_groups], conditions = [] },
      { sid = "OwnSecretsMetadata", actions = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"], resources = [r.secrets], conditions = [] },
      { sid = "ScalableTargetTags", actions = ["application-autoscaling:ListTagsForResource"], resources = ["${local.arn.application-autoscaling}:scalable-target/*"], conditions = [] },
    ]
  }
}

# --- Documents ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "state" {
  for_each = toset(local.roots)

  statement {
    sid       = "ListOwnStateKey"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.state_key[each.key], "${local.state_key[each.key]}.tflock", local.workspace_prefix[each.key]]
    }
  }

  statement {
    sid       = "ReadWriteOwnState"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.state_bucket_arn}/${local.state_key[each.key]}"]
  }

  # The S3 backend's lock file (use_lockfile): created with a conditional write, then deleted.
  statement {
    sid       = "LockOwnState"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_bucket_arn}/${local.state_key[each.key]}.tflock"]
  }
}

data "aws_iam_policy_document" "plan_state" {
  for_each = toset(local.roots)

  statement {
    sid       = "ListOwnStateKey"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.state_key[each.key], local.workspace_prefix[each.key]]
    }
  }

  # Plans run with -lock=false: a pull request never writes, not even a lock file.
  statement {
    sid       = "ReadOwnState"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/${local.state_key[each.key]}"]
  }
}

data "aws_iam_policy_document" "apply" {
  #checkov:skip=CKV_AWS_356:Only wildcard-only actions (Describe*, DeregisterTaskDefinition), CreateServiceLinkedRole (conditioned on the service) and ELB tag-on-create (conditioned on CreateAction) use "*"; every other statement names its resources.
  #checkov:skip=CKV_AWS_111:Writes on "*" are limited by conditions: ELB AddTags only as part of a create, Application Auto Scaling only in the ecs namespace; security groups and load balancers are limited by the environment tag.
  #checkov:skip=CKV_AWS_109:iam:PassRole is limited to the environment's role prefix and to ecs-tasks.amazonaws.com; CreateRole/PutRolePolicy require the platform's permissions boundary.
  for_each = merge(local.env_apply_statements, { platform = local.platform_apply_statements })

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

data "aws_iam_policy_document" "plan" {
  for_each = merge(local.env_plan_statements, { platform = local.platform_plan_statements })

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

# --- Roles -------------------------------------------------------------------------------------

module "role_plan" {
  source   = "../modules/github_role"
  for_each = toset(local.roots)

  name                = "${var.project}-github-plan-${each.key}"
  description         = "terraform plan of the ${each.key} root from pull requests of ${var.github_repository}: read-only"
  oidc_provider_arn   = module.github_oidc.oidc_provider_arn
  github_repository   = var.github_repository
  trust_pull_requests = true
  policies = {
    state = data.aws_iam_policy_document.plan_state[each.key].json
    read  = data.aws_iam_policy_document.plan[each.key].json
  }
}

module "role_terraform" {
  source   = "../modules/github_role"
  for_each = toset(local.roots)

  name               = "${var.project}-github-terraform-${each.key}"
  description        = "terraform apply of the ${each.key} root (GitHub environment ${var.github_terraform_environment_prefix}${each.key}, main)"
  oidc_provider_arn  = module.github_oidc.oidc_provider_arn
  github_repository  = var.github_repository
  github_environment = "${var.github_terraform_environment_prefix}${each.key}"
  policies = {
    state = data.aws_iam_policy_document.state[each.key].json
    apply = data.aws_iam_policy_document.apply[each.key].json
  }
}

# --- The platform root's own roles ---------------------------------------------------------------

locals {
  p = {
    cluster       = "${local.arn.ecs}:cluster/${local.name}"
    services      = "${local.arn.ecs}:service/${local.name}/*"
    families      = "${local.arn.ecs}:task-definition/${var.project}-mlflow:*"
    roles         = "${local.iam_arn}:role/${var.project}-*"
    policies      = "${local.iam_arn}:policy/${var.project}-*"
    oidc          = "${local.iam_arn}:oidc-provider/token.actions.githubusercontent.com"
    log_groups    = ["${local.arn.logs}:log-group:/ecs/${var.project}-mlflow*", "${local.arn.logs}:log-group:/vpc/${local.name}/*"]
    secrets       = ["${local.arn.secretsmanager}:secret:${var.project}-mlflow/*"]
    rds           = ["${local.arn.rds}:db:${var.project}-mlflow", "${local.arn.rds}:pg:${var.project}-mlflow-*", "${local.arn.rds}:subgrp:${var.project}-mlflow-*"]
    bucket        = "arn:${local.partition}:s3:::${var.project}-mlflow-artifacts-*"
    repositories  = "${local.arn.ecr}:repository/${var.project}/*"
    parameters    = "${local.arn.ssm}:parameter/${var.project}/platform/*"
    aliases       = "${local.arn.kms}:alias/${var.project}-*"
    alarms        = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:TargetTracking-service/${local.name}/*"
    load_balancer = "${local.arn.elasticloadbalancing}:loadbalancer/app/${var.project}-mlflow-*/*"
    listeners     = "${local.arn.elasticloadbalancing}:listener/app/${var.project}-mlflow-*/*"
    target_groups = "${local.arn.elasticloadbalancing}:targetgroup/*/*"
    tag           = { test = "StringEquals", variable = "aws:ResourceTag/environment", values = ["platform"] }
    new_tag       = { test = "StringEquals", variable = "aws:RequestTag/environment", values = ["platform"] }
  }
  s3_bucket_reads = [
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    # HeadBucket: lists key names, never reads an object (no s3:GetObject on artefacts).
    "s3:ListBucket",
  ]
  rds_reads = [
    "rds:DescribeDBInstances",
    "rds:DescribeDBParameterGroups",
    "rds:DescribeDBParameters",
    "rds:DescribeDBSubnetGroups",
    "rds:ListTagsForResource",
  ]
  kms_key_reads = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]

  platform_plan_statements = [
    { sid = "WildcardOnlyReads", actions = concat(local.wildcard_reads, ["ssm:DescribeParameters", "kms:ListAliases"]), resources = ["*"], conditions = [] },
    { sid = "Ecs", actions = ["ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListTagsForResource"], resources = [local.p.cluster, local.p.services, local.p.families], conditions = [] },
    { sid = "Iam", actions = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetOpenIDConnectProvider"], resources = [local.p.roles, local.p.policies, local.p.oidc], conditions = [] },
    { sid = "Ecr", actions = ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource"], resources = [local.p.repositories], conditions = [] },
    { sid = "KmsKey", actions = local.kms_key_reads, resources = ["${local.arn.kms}:key/*"], conditions = [local.p.tag] },
    { sid = "Rds", actions = local.rds_reads, resources = local.p.rds, conditions = [] },
    { sid = "ArtifactBucketSettings", actions = local.s3_bucket_reads, resources = [local.p.bucket], conditions = [] },
    { sid = "Logs", actions = ["logs:ListTagsForResource"], resources = local.p.log_groups, conditions = [] },
    { sid = "SecretsMetadata", actions = ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"], resources = local.p.secrets, conditions = [] },
    { sid = "Parameters", actions = ["ssm:GetParameter", "ssm:ListTagsForResource"], resources = [local.p.parameters], conditions = [] },
    { sid = "ScalableTargetTags", actions = ["application-autoscaling:ListTagsForResource"], resources = ["${local.arn.application-autoscaling}:scalable-target/*"], conditions = [] },
  ]

  # The platform's apply role manages IAM (the GitHub roles, the boundaries): whoever may apply the
  # platform may in effect grant any permission in the account. Its statements keep accidents in
  # bounds (names, tags, services); the guard against misuse is the approval on GitHub
  # environment infrastructure-platform, on main, of a reviewed plan.
  platform_apply_statements = concat(local.platform_plan_statements, [
    {
      sid = "Network"
      actions = [
        "ec2:AllocateAddress",
        "ec2:AssociateRouteTable",
        "ec2:AttachInternetGateway",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CreateFlowLogs",
        "ec2:CreateInternetGateway",
        "ec2:CreateNatGateway",
        "ec2:CreateRoute",
        "ec2:CreateRouteTable",
        "ec2:CreateSecurityGroup",
        "ec2:CreateSubnet",
        "ec2:CreateTags",
        "ec2:CreateVpc",
        "ec2:DeleteFlowLogs",
        "ec2:DeleteInternetGateway",
        "ec2:DeleteNatGateway",
        "ec2:DeleteRoute",
        "ec2:DeleteRouteTable",
        "ec2:DeleteSecurityGroup",
        "ec2:DeleteSubnet",
        "ec2:DeleteTags",
        "ec2:DeleteVpc",
        "ec2:DetachInternetGateway",
        "ec2:DisassociateAddress",
        "ec2:DisassociateRouteTable",
        "ec2:ModifySecurityGroupRules",
        "ec2:ModifySubnetAttribute",
        "ec2:ModifyVpcAttribute",
        "ec2:ReleaseAddress",
        "ec2:ReplaceRoute",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
        "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
      ]
      resources  = ["*"]
      conditions = [{ test = "StringEquals", variable = "aws:RequestedRegion", values = [local.region] }]
    },
    {
      sid = "Key"
      actions = concat(local.kms_key_reads, [
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DisableKeyRotation",
        "kms:EnableKeyRotation",
        "kms:GenerateDataKey",
        "kms:PutKeyPolicy",
        "kms:RetireGrant",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:UpdateKeyDescription",
      ])
      resources  = ["${local.arn.kms}:key/*"]
      conditions = [local.p.tag]
    },
    { sid = "CreateKey", actions = ["kms:CreateKey", "kms:TagResource"], resources = ["*"], conditions = [local.p.new_tag] },
    { sid = "KeyAlias", actions = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"], resources = [local.p.aliases, "${local.arn.kms}:key/*"], conditions = [] },
    {
      sid = "Repositories"
      actions = [
        "ecr:CreateRepository",
        "ecr:DeleteLifecyclePolicy",
        "ecr:DeleteRepository",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:PutLifecyclePolicy",
        "ecr:TagResource",
        "ecr:UntagResource",
      ]
      resources  = [local.p.repositories]
      conditions = []
    },
    {
      sid = "Roles"
      actions = [
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:DeleteRolePolicy",
        "iam:ListInstanceProfilesForRole",
        "iam:PutRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateRole",
        "iam:UpdateRoleDescription",
      ]
      resources  = [local.p.roles]
      conditions = []
    },
    {
      sid        = "AttachOnlyRdsMonitoringPolicy"
      actions    = ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
      resources  = [local.p.roles]
      conditions = [{ test = "ArnEquals", variable = "iam:PolicyARN", values = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"] }]
    },
    {
      sid        = "PassRolesToTheirServices"
      actions    = ["iam:PassRole"]
      resources  = [local.p.roles]
      conditions = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com", "vpc-flow-logs.amazonaws.com"] }]
    },
    {
      sid        = "Boundaries"
      actions    = ["iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:ListPolicyVersions", "iam:TagPolicy", "iam:UntagPolicy"]
      resources  = [local.p.policies]
      conditions = []
    },
    {
      sid        = "OidcProvider"
      actions    = ["iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider"]
      resources  = [local.p.oidc]
      conditions = []
    },
    { sid = "ServiceLinkedRoles", actions = ["iam:CreateServiceLinkedRole"], resources = ["*"], conditions = [local.service_linked_roles] },
    {
      sid = "Database"
      actions = [
        "rds:AddTagsToResource",
        "rds:CreateDBInstance",
        "rds:CreateDBParameterGroup",
        "rds:CreateDBSubnetGroup",
        "rds:DeleteDBInstance",
        "rds:DeleteDBParameterGroup",
        "rds:DeleteDBSubnetGroup",
        "rds:ModifyDBInstance",
        "rds:ModifyDBParameterGroup",
        "rds:ModifyDBSubnetGroup",
        "rds:RemoveTagsFromResource",
      ]
      resources  = local.p.rds
      conditions = []
    },
    # RDS creates (and rotates) the master password's secret as the caller.
    {
      sid        = "RdsManagedSecret"
      actions    = ["secretsmanager:CreateSecret", "secretsmanager:RotateSecret", "secretsmanager:TagResource"]
      resources  = ["${local.arn.secretsmanager}:secret:rds!db-*"]
      conditions = []
    },
    {
      sid        = "SecretsMetadataWrite"
      actions    = ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:TagResource", "secretsmanager:UntagResource", "secretsmanager:UpdateSecret"]
      resources  = local.p.secrets
      conditions = []
    },
    {
      sid = "ArtifactBucket"
      actions = [
        "s3:CreateBucket",
        "s3:DeleteBucket",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketLogging",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketPolicy",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketTagging",
        "s3:PutBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:PutLifecycleConfiguration",
      ]
      resources  = [local.p.bucket]
      conditions = []
    },
    {
      sid        = "ParametersWrite"
      actions    = ["ssm:AddTagsToResource", "ssm:DeleteParameter", "ssm:PutParameter", "ssm:RemoveTagsFromResource"]
      resources  = [local.p.parameters]
      conditions = []
    },
    {
      sid        = "LogGroups"
      actions    = ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DeleteRetentionPolicy", "logs:DisassociateKmsKey", "logs:PutRetentionPolicy", "logs:TagResource", "logs:UntagResource"]
      resources  = local.p.log_groups
      conditions = []
    },
    {
      sid = "MlflowEcs"
      actions = [
        "ecs:CreateCluster",
        "ecs:CreateService",
        "ecs:DeleteCluster",
        "ecs:DeleteService",
        "ecs:PutClusterCapacityProviders",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "ecs:UntagResource",
        "ecs:UpdateCluster",
        "ecs:UpdateService",
      ]
      resources  = [local.p.cluster, local.p.services, local.p.families]
      conditions = []
    },
    { sid = "DeregisterTaskDefinitions", actions = ["ecs:DeregisterTaskDefinition"], resources = ["*"], conditions = [] },
    {
      sid        = "CreateMlflowLoadBalancer"
      actions    = ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"]
      resources  = [local.p.load_balancer, local.p.target_groups]
      conditions = [local.p.new_tag]
    },
    {
      sid = "ChangeMlflowLoadBalancer"
      actions = [
        "elasticloadbalancing:CreateListener",
        "elasticloadbalancing:DeleteListener",
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyListenerAttributes",
        "elasticloadbalancing:ModifyLoadBalancerAttributes",
        "elasticloadbalancing:ModifyTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:RemoveTags",
        "elasticloadbalancing:SetSecurityGroups",
        "elasticloadbalancing:SetSubnets",
      ]
      resources  = [local.p.load_balancer, local.p.listeners, local.p.target_groups]
      conditions = [local.p.tag]
    },
    {
      sid        = "TagOnCreateElb"
      actions    = ["elasticloadbalancing:AddTags"]
      resources  = ["*"]
      conditions = [{ test = "StringEquals", variable = "elasticloadbalancing:CreateAction", values = ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"] }]
    },
    {
      sid        = "EcsServiceAutoScaling"
      actions    = ["application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DeregisterScalableTarget", "application-autoscaling:PutScalingPolicy", "application-autoscaling:RegisterScalableTarget"]
      resources  = ["*"]
      conditions = [{ test = "StringEquals", variable = "application-autoscaling:service-namespace", values = ["ecs"] }]
    },
    { sid = "ScalableTargetTagsWrite", actions = ["application-autoscaling:TagResource", "application-autoscaling:UntagResource"], resources = ["${local.arn.application-autoscaling}:scalable-target/*"], conditions = [] },
    { sid = "TargetTrackingAlarms", actions = ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"], resources = [local.p.alarms], conditions = [] },
  ])
}
