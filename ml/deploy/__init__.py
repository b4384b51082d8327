"""Continuous deployment: images built once, releases, and `mlops deploy` as one transaction.

One module per concept: `settings` (the configuration names), `images` (build and push, by
digest), `release` (the immutable release record), `ecs` (the AWS ECS adapter and rollout
observer), `smoke` (the mandatory smoke test), `records` (the registry tags a deploy leaves),
`alias` (the seam to the promotions engine) and `transaction` (`mlops deploy` itself).
"""
