"""`mlops deploy` (one release to one environment, as a transaction; break-glass) and
`mlops smoke`.

Configuration comes from the configuration names (`ml.deploy.settings`,
docs/contracts.md#configuration-names); the work is in `ml.deploy.transaction`. boto3 is
imported inside the verbs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ml.cli.base import console, mlops_command
from ml.errors import ConfigError


class DeployEnv(StrEnum):
    """Environment whose API (and alias) a release goes to."""

    staging = "staging"
    production = "production"


class Service(StrEnum):
    """Which service runs the release's image."""

    serve = "serve"
    mlflow = "mlflow"


def _registry() -> Any:
    from ml.registry import Registry
    from ml.settings import MLSettings

    return Registry(MLSettings().resolved_tracking_uri())


def _clients(region: str | None) -> tuple[Any, Any]:
    from ml.adapters import aws

    return aws.client("ecs", region), aws.client("ecr", region)


def _gates(path: Path | None) -> Any:
    from ml.promotions.config import PromotionSettings
    from ml.promotions.gates import load_gates

    return load_gates(path or PromotionSettings().gates_file)


def _stages(flag: bool | None) -> bool:
    from ml.promotions.config import PromotionSettings

    return PromotionSettings().stages if flag is None else flag


def _history(ref: str) -> list[str]:
    """Commits of `ref`, newest first (first parents: the order merges reached the branch)."""
    from ml.adapters import git
    from ml.errors import GitHubError

    try:
        return git.git("rev-list", "--first-parent", ref).split()
    except GitHubError as exc:
        raise ConfigError(
            f"--newest orders releases by the history of {ref}, which git cannot read ({exc}); "
            "check out with fetch-depth: 0, or pass --git-ref"
        ) from None


def _release_gates(path: Path | None, rel: Any) -> Any:
    """The gates file of the release's commit (`git show <sha>:<path>`), not the checkout's:
    a release is judged by the gates it was reviewed with. The checkout's file when the
    checkout is that commit, when a file is named (--gates, ML_PROMOTE_GATES_FILE), or when no
    release is named (break-glass keeps integrity gates)."""
    import os
    import tempfile

    from ml.adapters import git
    from ml.errors import GitHubError
    from ml.promotions.config import PromotionSettings
    from ml.promotions.gates import load_gates

    file = path or PromotionSettings().gates_file
    explicit = path is not None or "ML_PROMOTE_GATES_FILE" in os.environ
    if rel is None or explicit or rel.git_sha == git.sha():
        return load_gates(file)
    try:
        text = git.git("show", f"{rel.git_sha}:{Path(file).as_posix()}")
    except GitHubError as exc:
        raise ConfigError(
            f"cannot read {file} at release {rel.id}'s commit {rel.git_sha[:12]} ({exc}); "
            "check out with fetch-depth: 0, or pass --gates explicitly"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / Path(file).name
        copy.write_text(text)
        return load_gates(copy)


def _production_checks(registry: Any, settings: Any, git_ref: str, digest: str | None) -> Any:
    """Production's refusals, each raising with nothing written: superseded by a newer release
    already running there (exit 17), no passing or a stale scan, a tampered record (14)."""
    from ml.deploy import release as releases

    model = settings.model_name

    def not_superseded(rel: Any) -> None:
        releases.refuse_superseded(registry, model, "production", rel, lambda: _history(git_ref))

    def scanned(rel: Any) -> None:
        releases.require_scan(rel, settings.scan_max_age_hours)

    def intact(rel: Any) -> None:
        releases.require_intact(registry, model, rel, digest)

    return (intact, not_superseded, scanned)


@mlops_command
def deploy(
    env: Annotated[
        DeployEnv | None,
        typer.Option("--env", help="staging or production (the API service and its alias)."),
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--release", help="Release id (`mlops release list`).")
    ] = None,
    service: Annotated[
        Service,
        typer.Option(
            "--service",
            help="serve: the environment's API (alias + task definition); mlflow: the "
            "platform's MLflow service (MLFLOW_ECS_*; only when its digest changed).",
        ),
    ] = Service.serve,
    previous_verified: Annotated[
        bool,
        typer.Option(
            "--previous-verified",
            help="Break-glass: move production back to the previous verified release now.",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded with a break-glass).")
    ] = None,
    newest: Annotated[
        bool,
        typer.Option(
            "--newest",
            help="Deploy the newest release this environment may take (production: verified in "
            "staging; never one withdrawn) when it is newer on --git-ref than --release; keep "
            "what runs now when that is newer still (CD's queued jobs never step back).",
        ),
    ] = False,
    git_ref: Annotated[
        str,
        typer.Option("--git-ref", help="Branch whose first-parent history orders releases."),
    ] = "origin/main",
    allow_skip_staging: Annotated[
        bool,
        typer.Option(
            "--allow-skip-staging",
            help="Let production take a release staging never verified (recorded).",
        ),
    ] = False,
    gates: Annotated[
        Path | None, typer.Option("--gates", help="Reviewed gates file (config/gates.yaml).")
    ] = None,
    stages: Annotated[
        bool | None,
        typer.Option("--stages/--no-stages", help="Mirror legacy stages (ML_PROMOTE_STAGES)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Rollout wait, s (DEPLOY_ROLLOUT_TIMEOUT).")
    ] = None,
    poll: Annotated[
        float | None, typer.Option("--poll", help="Rollout poll, s (DEPLOY_POLL_INTERVAL).")
    ] = None,
    smoke_timeout: Annotated[
        float | None,
        typer.Option("--smoke-timeout", help="Smoke retries, s (DEPLOY_SMOKE_TIMEOUT)."),
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option(
            "--digest",
            help="The release record's digest as `release create` printed it (a job output): "
            "production refuses a record that no longer hashes to it.",
        ),
    ] = None,
) -> None:
    """Deploy a release as one transaction: a task definition pinning the release's image and
    model version, wait, smoke, then the alias; or revert.

    Exit 9: failed and reverted (verified); 10: the revert failed too (a human must act);
    11: another lease holds the model; 13: image not in ECR; 14: release missing, unverified,
    unscanned or tampered with; 16: interrupted (SIGINT/SIGTERM; rerun to resume);
    17: superseded (a newer release already runs there; nothing deployed).
    """
    from ml.adapters import actions
    from ml.adapters.ecs import ServiceRef
    from ml.deploy import release as releases
    from ml.deploy.settings import DeploySettings
    from ml.deploy.transaction import Deployment, Options, Target, break_glass
    from ml.promotions.config import PromotionSettings
    from ml.promotions.records import lease_owner

    settings = DeploySettings()
    if service is Service.mlflow:
        if previous_verified:
            raise ConfigError("--previous-verified rolls back the API, not --service mlflow")
        settings.require("mlflow_ecs_cluster", "mlflow_ecs_service", "tracking_uri")
        target = Target(
            "mlflow",
            ServiceRef(str(settings.mlflow_ecs_cluster), str(settings.mlflow_ecs_service)),
            str(settings.tracking_uri),
            "mlflow",
            settings.container,
        )
    else:
        if env is None:
            raise ConfigError("--env staging|production is required for the API service")
        settings.require("ecs_cluster", "ecs_service", "service_url")
        target = Target(
            env.value,
            ServiceRef(str(settings.ecs_cluster), str(settings.ecs_service)),
            str(settings.service_url),
            "serve",
            settings.container,
        )
    if previous_verified == (release_id is not None):
        raise ConfigError("pass exactly one of --release R and --previous-verified")
    if newest and previous_verified:
        raise ConfigError("--newest goes forward; --previous-verified goes back: pass one")
    if newest and service is Service.serve and env is DeployEnv.production:
        raise ConfigError(
            "--newest is refused for production: a production job deploys exactly the release "
            "its run built and staging verified (--release R), or ends superseded"
        )
    registry = _registry()
    rel = (
        None if previous_verified else releases.get(registry, settings.model_name, str(release_id))
    )
    production = service is Service.serve and env is DeployEnv.production
    checks: tuple[Any, ...] = ()
    if production and rel is not None:
        checks = _production_checks(registry, settings, git_ref, digest)
    options = Options(
        stages=_stages(stages),
        gates=_release_gates(gates, rel) if service is Service.serve else None,
        production_checks=checks,
        allow_skip_staging=allow_skip_staging,
        rollout_timeout=timeout or settings.rollout_timeout,
        poll_interval=poll or settings.poll_interval,
        smoke_timeout=smoke_timeout or settings.smoke_timeout,
        revert_smoke_timeout=settings.revert_smoke_timeout,
        lease_ttl=settings.lease_ttl,
        lease_settle=PromotionSettings().lease_settle,
        owner=lease_owner(),
    )
    ecs_client, ecr_client = _clients(settings.aws_region)

    def say(msg: str) -> None:
        console.print(msg, highlight=False)

    run = Deployment(
        registry, ecs_client, ecr_client, settings.model_name, target, options,
        run_url=actions.run_url(), progress=say,
    )  # fmt: skip
    if previous_verified:
        done = break_glass(run, reason=reason)
        console.print(
            f"BREAK-GLASS: production now runs release {done.to_release.id} "
            f"({done.to_release.models}); release {done.from_release} is withdrawn.\n"
            "promotions.yaml still names the newer version: the nightly status check fails "
            "until the PR that records the rollback is merged. Open it with:",
            highlight=False,
        )
        for command in done.pr_commands:
            console.print(f"  {command}", highlight=False)
        first = sorted(done.to_release.models.items())[0]
        actions.write_outputs(
            release=done.to_release.id, rollback_model=first[0], rollback_to=str(first[1])
        )
        return
    assert rel is not None
    if newest:
        chosen = releases.newest(registry, settings.model_name, target.env, rel, _history(git_ref))
        if chosen.id != rel.id and service is Service.serve:
            from dataclasses import replace

            run.opts = replace(run.opts, gates=_release_gates(gates, chosen))
        if chosen.id != rel.id:
            console.print(
                f"release {rel.id} is superseded: {target.env} takes release {chosen.id} "
                f"(newer on {git_ref})",
                highlight=False,
            )
        rel = chosen
    outcome = run.run(rel)
    version = rel.models.get(settings.model_name)
    actions.write_outputs(
        release=rel.id,
        task_definition=outcome.task_definition,
        version="" if version is None else str(version),
    )


@mlops_command
def smoke(
    url: Annotated[
        str | None, typer.Option("--url", help="Service base URL (default: SERVICE_URL).")
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--release", help="Release whose version and git SHA to expect.")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Expected model version (without --release).")
    ] = None,
    git_sha: Annotated[
        str | None, typer.Option("--git-sha", help="Expected git commit (without --release).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Retry for this long, s.")] = 60.0,
) -> None:
    """Check a running API: /ready 200 and /metadata names the release's version and git SHA."""
    from ml.deploy import release as releases
    from ml.deploy.settings import DeploySettings
    from ml.deploy.smoke import Expected, smoke_serve

    settings = DeploySettings()
    base = url or settings.service_url
    if not base:
        raise ConfigError("missing configuration: SERVICE_URL (or --url); nothing was checked")
    model = settings.model_name
    if release_id:
        rel = releases.get(_registry(), model, release_id)
        if model not in rel.models:
            raise ConfigError(f"release {rel.id} names no version of {model}")
        expected = Expected(model, rel.models[model], rel.git_sha)
    elif version is not None:
        expected = Expected(model, version, git_sha)
    else:
        raise ConfigError("pass --release R (or --version N [--git-sha S])")
    smoke_serve(base, expected, timeout=timeout)
    console.print(f"smoke test passed: {base} serves {expected.describe()}", highlight=False)
