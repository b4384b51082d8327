# A Fargate service behind an Application Load Balancer. Used twice per environment: for the
# prediction API (public ALB) and for the MLflow tracking server (internal ALB, see modules/mlflow).
#
# The CD workflow owns the running image: it registers a new revision of the task definition
# family (based on the latest ACTIVE revision, which carries what terraform last set) and
# updates the service. Terraform therefore ignores the service's task_definition and
# desired_count (the latter belongs to autoscaling).
#
# container_image must name an image that exists (a digest, or an immutable git-SHA/release tag
# CD pushed); while it is null the module builds everything but the task definition, the
# service and its autoscaling, so a first apply can run before the first image is pushed.

data "aws_region" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  create_service = var.container_image != null
  # `https` says it when the certificate is made in the same plan (its ARN unknown until then).
  https         = var.https != null ? var.https : var.certificate_arn != null
  scheme        = local.https ? "https" : "http"
  listener_port = local.https ? 443 : 80
  # ALB and target-group names are limited to 32 characters.
  short_name = substr(var.name, 0, 24)

  container_definition = {
    name      = var.container_name
    image     = var.container_image
    essential = true
    command   = var.command
    user      = var.container_user

    readonlyRootFilesystem = var.readonly_root_filesystem
    privileged             = false

    portMappings = [{
      containerPort = var.container_port
      protocol      = "tcp"
    }]

    environment = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
    secrets     = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]

    # Writable scratch space on the task's ephemeral storage, since the root fs is read-only.
    mountPoints = [for p in var.writable_paths : {
      sourceVolume  = "scratch-${md5(p)}"
      containerPath = p
      readOnly      = false
    }]

    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }

    stopTimeout = 30

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = var.container_name
      }
    }
  }
}

# --- Logs ----------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- IAM -----------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role is what the ECS agent uses: pull the image, write logs, read secrets.
resource "aws_iam_role" "execution" {
  name_prefix          = "${local.short_name}-exec-"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid = "EcrPull"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = var.ecr_repository_arns
    }
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.decrypt_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSecretsAndImages"
      actions   = ["kms:Decrypt"]
      resources = var.decrypt_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The task role is what the application's own AWS calls use; it gets nothing unless the caller
# passes policies (MLflow: its artifact bucket).
resource "aws_iam_role" "task" {
  name_prefix          = "${local.short_name}-task-"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy" "task" {
  for_each = var.task_role_policies

  name   = each.key
  role   = aws_iam_role.task.id
  policy = each.value
}

# --- Network -------------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name_prefix = "${local.short_name}-alb-"
  description = "Load balancer of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_cidr" {
  for_each = toset(var.ingress_cidr_blocks)

  security_group_id = aws_security_group.alb.id
  description       = "Listener from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = local.listener_port
  to_port           = local.listener_port
  cidr_ipv4         = each.value
}

# With HTTPS, port 80 is open only to redirect to 443.
resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  for_each = local.https ? toset(var.ingress_cidr_blocks) : toset([])

  security_group_id = aws_security_group.alb.id
  description       = "HTTP to HTTPS redirect from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "alb_sg" {
  count = length(var.ingress_security_group_ids)

  security_group_id            = aws_security_group.alb.id
  description                  = "Listener from a trusted security group"
  ip_protocol                  = "tcp"
  from_port                    = local.listener_port
  to_port                      = local.listener_port
  referenced_security_group_id = var.ingress_security_group_ids[count.index]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to the tasks' container port"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "tasks" {
  name_prefix = "${local.short_name}-tasks-"
  description = "Tasks of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Container port from the load balancer only"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.alb.id
}

#trivy:ignore:AVD-AWS-0104 Tasks call AWS APIs (ECR, Secrets Manager, S3, CloudWatch) over HTTPS through the NAT gateway; their addresses are not fixed CIDRs.
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs through the NAT gateway"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_vpc" {
  for_each = toset([for p in var.egress_vpc_ports : tostring(p)])

  security_group_id = aws_security_group.tasks.id
  description       = "Port ${each.value} inside the VPC (internal load balancers)"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.value)
  to_port           = tonumber(each.value)
  cidr_ipv4         = data.aws_vpc.this.cidr_block
}

# --- Load balancer -------------------------------------------------------------------------

#trivy:ignore:AVD-AWS-0053 The prediction API is public by design; MLflow's load balancer is internal unless public_endpoint is set.
resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is attached outside this module where the organisation runs one; the API validates every field itself.
  #checkov:skip=CKV2_AWS_20:Port 80 redirects to HTTPS whenever the service has a certificate (https); without one the callers' roots keep the load balancer internal (plain HTTP never leaves the VPC).
  name                       = "${local.short_name}-alb"
  internal                   = var.internal
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.alb_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60
  tags                       = var.tags

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = var.name
      enabled = true
    }
  }
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the load balancer; load balancer to task traffic stays in the private subnets, limited by security groups.
  name_prefix          = substr(replace(var.name, "-", ""), 0, 6)
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 15
  tags                 = var.tags

  # Tuned for the rollback time (docs/deploy.md, "Rollback time"): a draining task has 15 s to
  # finish its requests (serve's own drain is 8 s; a 1,000-record request takes well under 1 s),
  # and a new target takes traffic after 2 checks 5 s apart instead of 2 x 15 s.
  health_check {
    enabled             = true
    path                = var.health_check_path
    matcher             = "200"
    interval            = 5
    timeout             = 3
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn
  tags              = var.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

#trivy:ignore:AVD-AWS-0054 HTTP only forwards when no certificate_arn is given (internal MLflow ALB, previews); with a certificate it redirects to HTTPS.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:HTTP only forwards when no certificate_arn is given (internal MLflow ALB, previews); with a certificate it redirects to HTTPS.
  #checkov:skip=CKV_AWS_103:This listener never terminates TLS (the HTTPS listener sets ELBSecurityPolicy-TLS13-1-2); it redirects or, on an internal load balancer, forwards.
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  tags              = var.tags

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.this.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

# --- Service -------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  count = local.create_service ? 1 : 0

  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.container_definition])
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  dynamic "volume" {
    for_each = toset(var.writable_paths)
    content {
      name = "scratch-${md5(volume.value)}"
    }
  }
}

resource "aws_ecs_service" "this" {
  count = local.create_service ? 1 : 0

  name                              = var.name
  cluster                           = var.cluster_arn
  task_definition                   = aws_ecs_task_definition.this[0].arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = var.health_check_grace_period_seconds
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false
  wait_for_steady_state             = false
  tags                              = var.tags

  # A rollout (and a revert: the previous revision) starts every replacement task at once and
  # stops an old task only once its replacement is healthy: capacity never drops, and the
  # previous release takes all traffic one task start + 2 health checks after the revert.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  deployment_controller {
    type = "ECS"
  }

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = var.container_name
    container_port   = var.container_port
  }

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}

# --- Autoscaling ---------------------------------------------------------------------------
# Application Auto Scaling owns desired_count (ignored above; `mlops deploy` never sends one).
# Two target-tracking policies: ALB requests per task (the measured capacity, see the
# requests_per_target variable) and CPU as a guard. AWS adds a task when any policy asks and
# removes one only when every policy that may scale in agrees; it suspends scale-in while an
# ECS deployment runs, so a rollout never loses capacity to it. Scale-in waits
# scale_in_cooldown_seconds after each change (a burst's tail does not drop tasks it needs again).

resource "aws_appautoscaling_target" "this" {
  count = local.create_service ? 1 : 0

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this[0].name}"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  count = local.create_service ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds
    # With the request policy on, CPU only adds tasks (a batch-heavy mix costs more CPU per
    # request than the request target assumes); removing them is the request policy's call, so
    # the two never fight over the count. Alone, it scales both ways.
    disable_scale_in = var.requests_per_target > 0

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  count = local.create_service && var.requests_per_target > 0 ? 1 : 0

  name               = "${var.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds
    disable_scale_in   = false

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
    }
  }
}
