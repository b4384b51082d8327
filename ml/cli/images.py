"""`mlops images build|push|sizes|compose-file`: build once, push, print digests
(ml.deploy.images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ml import atomic_output
from ml.cli.base import console, mlops_command
from ml.errors import ConfigError

images_app = typer.Typer(
    name="images",
    help="Container images: build (local, reused when unchanged), push by git SHA → digests.",
    no_args_is_help=True,
)


def _sha(git_sha: str | None) -> str:
    import os

    from ml.adapters import git

    return git_sha or os.environ.get("GIT_SHA") or git.sha()


@images_app.command("build")
@mlops_command
def build(
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="serve, mlflow, train (repeatable; default: those three), or airflow.",
        ),
    ] = None,
    tag: Annotated[str, typer.Option("--tag", help="Local tag (compose's IMAGE_TAG).")] = "latest",
    git_sha: Annotated[
        str | None, typer.Option("--git-sha", help="Baked in (default: GIT_SHA, then HEAD).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date.")] = False,
) -> None:
    """Build the images compose runs (`credit-risk-<target>:<tag>`); unchanged ones are reused."""
    from ml.deploy.images import TARGET_INPUTS, TARGETS, build_all

    chosen = target or list(TARGETS)
    unknown = sorted(set(chosen) - set(TARGET_INPUTS))
    if unknown:
        raise ConfigError(f"unknown target(s) {unknown} (known: {list(TARGET_INPUTS)})")
    for item in build_all(chosen, tag, git_sha=_sha(git_sha), force=force):
        state = f"built in {item.seconds:.0f} s" if item.built else "up to date"
        console.print(f"{item.name:32} {item.size / 1e6:>6.0f} MB  {state}", highlight=False)


@images_app.command("push")
@mlops_command
def push(
    git_sha: Annotated[
        str | None, typer.Option("--git-sha", help="Tag to push (default: GIT_SHA, then HEAD).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON to this file.")
    ] = None,
) -> None:
    """Build once and push serve + mlflow as `<repo>:<git sha>`; print their digests as JSON
    (and `serve_image=` / `mlflow_image=` to GITHUB_OUTPUT). An existing tag is kept."""
    from ml.deploy.image_ref import repository_ref
    from ml.deploy.images import outputs, write_outputs
    from ml.deploy.images import push as push_images
    from ml.deploy.settings import DeploySettings

    settings = DeploySettings()
    settings.require("ecr_serve_repository_url", "ecr_mlflow_repository_url")
    repos = {
        "serve": repository_ref(str(settings.ecr_serve_repository_url), "ECR_SERVE_REPOSITORY_URL"),
        "mlflow": repository_ref(
            str(settings.ecr_mlflow_repository_url), "ECR_MLFLOW_REPOSITORY_URL"
        ),
    }
    sha = _sha(git_sha)
    data = outputs(push_images(repos, sha), sha)
    write_outputs(data, output)
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@images_app.command("scan")
@mlops_command
def scan(
    images: Annotated[
        Path | None,
        typer.Option("--images", help="JSON written by `mlops images push --output`."),
    ] = None,
    release_id: Annotated[
        str | None,
        typer.Option("--release", help="Rescan this release's digests and record it there."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the scan record here (`release create --scan`)."
        ),
    ] = None,
    ignorefile: Annotated[
        Path, typer.Option("--ignorefile", help="Accepted findings, as `make scan-images`.")
    ] = Path(".trivyignore.yaml"),
    trivy: Annotated[str, typer.Option("--trivy", help="trivy binary.")] = ".venv/bin/trivy",
) -> None:
    """Scan the digests CD pushed (trivy image: HIGH/CRITICAL with a fix fail, .trivyignore.yaml
    accepts); exit 13 on a finding, after writing the record (production refuses it)."""
    from ml.deploy import release as releases
    from ml.deploy import scan as scanning
    from ml.errors import ImageError

    if (images is None) == (release_id is None):
        raise ConfigError("pass exactly one of --images FILE and --release R")
    registry = model = None
    if images is not None:
        try:
            pushed = json.loads(images.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{images}: not the JSON of `mlops images push` ({exc})") from exc
        refs = sorted((pushed.get("images") or {}).values())
    else:
        from ml.cli.release import _model, _registry

        registry, model = _registry(), _model()
        rel = releases.get(registry, model, str(release_id))
        refs = [r for r in (rel.serve_image, rel.mlflow_image) if r]
    if not refs:
        raise ConfigError("no image to scan")
    done = scanning.scan(refs, trivy, ignorefile)
    if output is not None:
        atomic_output.write_text(output, done.model_dump_json(indent=2) + "\n")
    if registry is not None and model is not None:
        releases.add_rescan(registry, model, str(release_id), done)
    for ref, found in done.images.items():
        state = "FAILED: " + "; ".join(found) if found else "no blocking finding"
        console.print(f"{ref}: {state}", highlight=False)
    console.print(f"trivy {done.tool_version}, DB of {done.db_updated_at}", highlight=False)
    if not done.passed:
        raise ImageError(
            "HIGH/CRITICAL vulnerabilities with a fix in the pushed images (fix them, or accept "
            "one in .trivyignore.yaml with a statement and an expired_at)"
        )


@images_app.command("sizes")
@mlops_command
def sizes(tag: Annotated[str, typer.Option("--tag", help="Local tag.")] = "latest") -> None:
    """Print the size of each local image."""
    from ml.deploy.images import sizes as image_sizes

    for name, size in image_sizes(tag):
        shown = f"{size / 1e6:.0f} MB" if size is not None else "missing"
        console.print(f"{name:32} {shown:>8}", highlight=False)


@images_app.command("compose-file")
@mlops_command
def compose_file(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path(
        ".cache/docker/compose.hostnet.yml"
    ),
) -> None:
    """Write the host-network compose file (base + hostnet override, without `ports:`)."""
    from ml.deploy.compose import render_hostnet

    typer.echo(render_hostnet(output))
