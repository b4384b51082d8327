"""Deploying the serve image to AWS ECS: check the image, roll out, wait, smoke-test, roll back.

`ml.deploy.ecs` holds the logic as plain functions over boto3 clients; `scripts/deploy.py` is the
thin entry point the `deploy` reusable workflow calls.
"""
