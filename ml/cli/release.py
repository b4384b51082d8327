"""`mlops release create|show|list|verify`: the immutable unit CD promotes (ml.deploy.release)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

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
    from ml import github

    found = _spec_models(file)
    if model is not None and model not in found:
        raise ConfigError(f"{file}: model {model!r} is not listed (known: {sorted(found)})")
    typer.echo(json.dumps(found, sort_keys=True))
    if model is not None:
        github.write_outputs(version=str(found[model]))


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
) -> None:
    """Record a release on the served model; the same content again is a no-op (exit 0),
    other content under an existing id is refused (exit 14)."""
    from ml import github
    from ml.deploy import release as releases

    pushed: dict[str, Any] = {}
    if images is not None:
        try:
            pushed = json.loads(images.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{images}: not the JSON of `mlops images push` ({exc})") from exc
    sha = git_sha or pushed.get("git_sha") or github.git_sha()
    serve = serve_image or (pushed.get("images") or {}).get("serve")
    if not serve:
        raise ConfigError("no serve image: pass --images FILE or --serve-image REPO@sha256:...")
    mlflow = mlflow_image or (pushed.get("images") or {}).get("mlflow")
    models = _spec_models(file)
    rel = releases.build(release_id or sha[:12], sha, serve, mlflow, models)
    stored, created = releases.create(_registry(), _model(), rel)
    verb = "created" if created else "already exists (same content)"
    console.print(f"release {stored.id} {verb}: {stored.models} {stored.serve_image}")
    github.write_outputs(release=stored.id)


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
    from ml import github
    from ml.deploy import release as releases

    if env not in ("staging", "production"):
        raise ConfigError(f"--env {env!r}: staging or production")
    rel = releases.verify(
        _registry(), _model(), release_id, env, checks=check or ["smoke", "e2e"],
        run_url=github.run_url(),
    )  # fmt: skip
    console.print(f"release {rel.id} verified in {env}: {rel.verified[env].checks}")


@release_app.command("report")
@mlops_command
def report(
    release_id: ReleaseOption,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the markdown here (default: print it)."),
    ] = None,
    gates: Annotated[Path, typer.Option("--gates", help="The reviewed gates file.")] = Path(
        "config/gates.yaml"
    ),
    governance: Annotated[
        Path, typer.Option("--governance", help="The reviewed governance file.")
    ] = Path("config/governance.yaml"),
) -> None:
    """Write the model risk record of a release (markdown): data, training config, metrics,
    gates and fairness with figures, canary, reason texts, approvals (docs/governance.md)."""
    from ml.deploy import release as releases
    from ml.governance.config import load_governance
    from ml.governance.report import release_report
    from ml.promotions.gates import load_gates

    registry = _registry()
    rel = releases.get(registry, _model(), release_id)
    text = release_report(registry, _model(), rel, load_gates(gates), load_governance(governance))
    if output is None:
        typer.echo(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"model risk record of release {rel.id}: {output}")
