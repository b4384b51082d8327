# An ECR repository that CD pushes immutable, scanned images to. Tags are the git SHA, so a tag
# never points at two images; a release adds the tag release-<git sha> to the same image (a
# second PutImage of the same manifest), and the lifecycle policy never expires those.

# Lifecycle, in ECR's own evaluation order (lowest rulePriority first). ECR's documented rules
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html, "Lifecycle
# policy evaluation rules") that this relies on:
#   - an image is expired by exactly one or zero rules;
#   - an image that matches the tagging requirements of a higher-priority rule cannot be expired
#     by a rule with a lower priority;
#   - with tagPatternList, an image is selected when one of its tags matches (an image pushed as
#     <git sha> and later also tagged release-<git sha> is selected by "release-*").
# So rule 1 selects every image that carries a release tag and, with a count no repository can
# reach, expires none of them: the images a recorded release references are never expired, and
# rules 2 and 3 can only expire untagged images and images that never became a release.
locals {
  lifecycle_policy = {
    rules = [
      {
        rulePriority = 1
        description  = "Keep every image tagged ${var.release_tag_pattern} (recorded releases)"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = [var.release_tag_pattern]
          countType      = "imageCountMoreThan"
          countNumber    = var.release_images_kept
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Expire untagged images after ${var.untagged_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 3
        description  = "Keep the newest ${var.max_image_count} images that are not releases"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.max_image_count
        }
        action = { type = "expire" }
      },
    ]
  }
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.encryption_type
    kms_key         = var.encryption_type == "KMS" ? var.kms_key_arn : null
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy     = jsonencode(local.lifecycle_policy)
}
