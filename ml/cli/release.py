"""`mlops release create|show|list|verify|audit|summary|approvals|untag`: the immutable unit CD
promotes (ml.deploy.release)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ml import atomic_output
from ml.cli.base import console, mlops_command
from ml.errors import ConfigError

release_app = typer.Typer(
    name="release",
    help="Releases: (serve image digest, mlflow image digest, model versions, git SHA).",
    no_args_is_help=True,
)

ReleaseOption = Annotated[str, typer.Option("--release", help="Release id.")]


def _registry() -> Any:
    from ml.registry import Registry
    from ml.settings import MLSettings

    return Registry(MLSettings().resolved_tracking_uri())


def _model() -> str:
    from ml.deploy.settings import DeploySettings

    return DeploySettings().model_name


def _spec_models(file: Path, env: str = "staging") -> dict[str, int]:
    """The versions git wants in `env` (a release is built for staging first; an entry pinned
    apart with `environments:` names each environment's own)."""
    from ml.promotions.spec import desired_versions, load_spec

    return desired_versions(load_spec(file), env)


@release_app.command("models")
@mlops_command
def models(
    file: Annotated[Path, typer.Option("--file", "-f", help="The spec.")] = Path("promotions.yaml"),
    model: Annotated[
        str | None, typer.Option("--model", help="Also output `version=` of this model.")
    ] = None,
) -> None:
    """Print the model versions a release of this commit carries (`version=` to GITHUB_OUTPUT)."""
    from ml.adapters import actions

    found = _spec_models(file)
    if model is not None and model not in found:
        raise ConfigError(f"{file}: model {model!r} is not listed (known: {sorted(found)})")
    typer.echo(json.dumps(found, sort_keys=True))
    if model is not None:
        actions.write_outputs(version=str(found[model]))


@release_app.command("create")
@mlops_command
def create(
    images: Annotated[
        Path | None,
        typer.Option("--images", help="JSON written by `mlops images push --output`."),
    ] = None,
    serve_image: Annotated[
        str | None, typer.Option("--serve-image", help="<repo>@sha256:... (overrides --images).")
    ] = None,
    mlflow_image: Annotated[
        str | None, typer.Option("--mlflow-image", help="<repo>@sha256:... (overrides --images).")
    ] = None,
    git_sha: Annotated[
        str | None, typer.Option("--git-sha", help="Commit (default: the images' / GITHUB_SHA).")
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--id", help="Release id (default: first 12 of the git SHA).")
    ] = None,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="Model versions come from this spec.")
    ] = Path("promotions.yaml"),
    scan: Annotated[
        Path | None,
        typer.Option("--scan", help="Scan record of the digests (`mlops images scan --output`)."),
    ] = None,
    ecr_tag: Annotated[
        bool,
        typer.Option(
            "--ecr-tag/--no-ecr-tag",
            help="Tag the digests release-<id> in ECR (the lifecycle policy keeps them).",
        ),
    ] = True,
) -> None:
    """Record (and seal) a release on the served model; the same content again is a no-op
    (exit 0), other content under an existing id is refused (exit 14). Prints `digest=`."""
    from ml.adapters import actions, git
    from ml.deploy import release as releases

    pushed: dict[str, Any] = {}
    if images is not None:
        try:
            pushed = json.loads(images.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{images}: not the JSON of `mlops images push` ({exc})") from exc
    sha = git_sha or pushed.get("git_sha") or git.sha()
    serve = serve_image or (pushed.get("images") or {}).get("serve")
    if not serve:
        raise ConfigError("no serve image: pass --images FILE or --serve-image REPO@sha256:...")
    mlflow = mlflow_image or (pushed.get("images") or {}).get("mlflow")
    models = _spec_models(file)
    scanned = None
    if scan is not None:
        try:
            scanned = releases.ScanRecord.model_validate_json(scan.read_text())
        except (OSError, ValueError) as exc:
            msg = f"{scan}: not the JSON of `mlops images scan --output` ({exc})"
            raise ConfigError(msg) from None
    rel = releases.build(release_id or sha[:12], sha, serve, mlflow, models, scanned)
    stored, created = releases.create(_registry(), _model(), rel)
    verb = "created" if created else "already exists (same content)"
    console.print(f"release {stored.id} {verb}: {stored.models} {stored.serve_image}")
    if ecr_tag:
        _tag_images(stored, remove=False)
    actions.write_outputs(release=stored.id, digest=stored.digest or "")


def _ecr() -> Any:
    from ml.adapters import aws
    from ml.deploy.settings import DeploySettings

    return aws.client("ecr", DeploySettings().aws_region)


def _tag_images(rel: Any, *, remove: bool) -> None:
    from ml.deploy.ecr import release_image_tag, tag_in_ecr, untag_in_ecr

    ecr, tag = _ecr(), release_image_tag(rel.id)
    for image in (rel.serve_image, rel.mlflow_image):
        if image is None:
            continue
        changed = untag_in_ecr(ecr, image, tag) if remove else tag_in_ecr(ecr, image, tag)
        what = ("removed from" if remove else "added to") if changed else "unchanged on"
        console.print(f"ECR tag {tag} {what} {image}", highlight=False)


@release_app.command("show")
@mlops_command
def show(release_id: ReleaseOption) -> None:
    """Print one release as JSON (content, verifications, withdrawals)."""
    from ml.deploy import release as releases

    typer.echo(json.dumps(json.loads(releases.get(_registry(), _model(), release_id).to_json()),
                          indent=2, sort_keys=True))  # fmt: skip


@release_app.command("list")
@mlops_command
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every release, oldest first, with where it was verified."""
    from ml.deploy import release as releases

    found = releases.list_all(_registry(), _model())
    if as_json:
        typer.echo(json.dumps([json.loads(r.to_json()) for r in found], indent=2))
        return
    for r in found:
        verified = ",".join(sorted(r.verified)) or "-"
        withdrawn = f" WITHDRAWN({','.join(sorted(r.withdrawn))})" if r.withdrawn else ""
        console.print(
            f"{r.id}  {r.created}  {r.git_sha[:12]}  {r.models}  verified: {verified}{withdrawn}",
            highlight=False,
        )
    if not found:
        console.print("no releases")


@release_app.command("verify")
@mlops_command
def verify(
    env: Annotated[str, typer.Option("--env", help="Environment that verified it (staging).")],
    release_id: ReleaseOption,
    check: Annotated[
        list[str] | None,
        typer.Option("--check", help="Checks that passed (repeatable; default: smoke, e2e)."),
    ] = None,
) -> None:
    """Record that the release passed its checks in ENV (CD calls it after the e2e job)."""
    from ml.adapters import actions
    from ml.deploy import release as releases

    if env not in ("staging", "production"):
        raise ConfigError(f"--env {env!r}: staging or production")
    rel = releases.verify(
        _registry(), _model(), release_id, env, checks=check or ["smoke", "e2e"],
        run_url=actions.run_url(),
    )  # fmt: skip
    console.print(f"release {rel.id} verified in {env}: {rel.verified[env].checks}")


@release_app.command("report")
@mlops_command
def report(
    release_id: ReleaseOption,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the markdown here and the HTML beside it (same name, .html); "
            "default: print the markdown.",
        ),
    ] = None,
    html_output: Annotated[
        Path | None,
        typer.Option("--html", help="Write the HTML here (default: beside --output)."),
    ] = None,
    gates: Annotated[Path, typer.Option("--gates", help="The reviewed gates file.")] = Path(
        "config/gates.yaml"
    ),
    governance: Annotated[
        Path, typer.Option("--governance", help="The reviewed governance file.")
    ] = Path("config/governance.yaml"),
) -> None:
    """Write the model risk record of a release (markdown and a self-contained HTML file): data,
    training config, metrics, gates and fairness with figures, canary, reason texts, approvals
    (docs/governance.md)."""
    from ml.deploy import release as releases
    from ml.governance.config import load_governance
    from ml.governance.report import html, markdown, release_record
    from ml.promotions.gates import load_gates

    registry = _registry()
    rel = releases.get(registry, _model(), release_id)
    blocks = release_record(registry, _model(), rel, load_gates(gates), load_governance(governance))
    if output is None and html_output is None:
        typer.echo(markdown(blocks))
        return
    page = html_output or (output.with_suffix(".html") if output is not None else None)
    if page is not None and page == output:
        raise ConfigError(f"--output {output} is the markdown file: name it .md, or pass --html")
    if output is not None:
        atomic_output.write_text(output, markdown(blocks))
        console.print(f"model risk record of release {rel.id}: {output}")
    if page is not None:
        atomic_output.write_text(page, html(blocks, f"Model risk record: release {rel.id}"))
        console.print(f"model risk record of release {rel.id} (HTML): {page}")


@release_app.command("audit")
@mlops_command
def audit() -> None:
    """Check the release records' digest chain; exit 14 naming any record rewritten after its
    creation (production refuses to deploy while one is)."""
    from ml.deploy import release as releases

    found = releases.list_all(_registry(), _model())
    problems = releases.verify_chain(found)
    if problems:
        from ml.errors import ReleaseError

        raise ReleaseError("release records failed the integrity check: " + "; ".join(problems))
    sealed = sum(1 for r in found if r.digest)
    console.print(f"{len(found)} release(s), {sealed} sealed: the digest chain is intact")


@release_app.command("summary")
@mlops_command
def summary(
    release_id: ReleaseOption,
    gates: Annotated[
        Path, typer.Option("--gates", help="Gates file of the release's commit.")
    ] = Path("config/gates.yaml"),
) -> None:
    """What the production approver approves: release id, digests, model versions, gate
    figures, scan and staging verification (the job summary, GITHUB_STEP_SUMMARY, and stdout)."""
    from ml.adapters import actions
    from ml.deploy.approval import summary_markdown

    text = summary_markdown(_registry(), _model(), release_id, gates)
    actions.append_summary(text)
    typer.echo(text)


@release_app.command("approvals")
@mlops_command
def approvals(release_id: ReleaseOption) -> None:
    """Record who approved this workflow run's deployments (GitHub's run approvals API) in the
    release's history (`mlops history` shows it); needs GITHUB_TOKEN and GITHUB_RUN_ID."""
    import os

    from ml.adapters.github import GitHubClient
    from ml.deploy import release as releases
    from ml.deploy.approval import fetch_approvals

    run_id = os.environ.get("GITHUB_RUN_ID")
    if not run_id:
        raise ConfigError("GITHUB_RUN_ID is not set: approvals are read for a workflow run")
    found = fetch_approvals(GitHubClient.from_env(), run_id)
    rel = releases.add_approvals(_registry(), _model(), release_id, found)
    for a in found:
        console.print(
            f"release {rel.id}: {a['state']} by {a['user']} for {', '.join(a['environments'])} "
            f"at {a['time']}",
            highlight=False,
        )
    if not found:
        console.print(f"release {rel.id}: no approval recorded for run {run_id}")


@release_app.command("untag")
@mlops_command
def untag(release_id: ReleaseOption) -> None:
    """Remove a withdrawn release's release-<id> tags from ECR (its digests may then expire)."""
    from ml.deploy import records
    from ml.deploy import release as releases

    registry, model = _registry(), _model()
    rel = releases.get(registry, model, release_id)
    if not rel.withdrawn:
        raise ConfigError(
            f"release {rel.id} is not withdrawn: its images are kept (a break-glass rollback "
            "withdraws a release)"
        )
    state = registry.model_state(model)
    for env in ("staging", "production"):
        deployed = records.read_deploy(state.tags if state else {}, env)
        if deployed is not None and deployed.release == rel.id and deployed.phase == "done":
            raise ConfigError(f"release {rel.id} is what {env} runs: its images are kept")
    _tag_images(rel, remove=True)
