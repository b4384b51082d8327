"""`mlops promote {validate,plan,apply,status,unlock}`, `mlops history`, `mlops rollback` and
`mlops versions`.

Verbs parse options, call `ml.promotions`, print and exit; every verb reads the registry URI
(`MLFLOW_TRACKING_URI`, default the embedded store under ML_HOME) and `--file` (default
`promotions.yaml`). Imports beyond typer happen inside the verbs (fast `mlops --help`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ml.cli.base import console, err_console, mlops_command
from ml.errors import DriftError, GateError, LeaseError

if TYPE_CHECKING:
    from ml.promotions.config import PromotionSettings
    from ml.registry import Registry

promote_app = typer.Typer(
    name="promote",
    help="Promote model versions through promotions.yaml: validate, plan, apply, status.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~0.3 s per start
)


class Env(StrEnum):
    """Deployment environment (alias name)."""

    staging = "staging"
    production = "production"


class Format(StrEnum):
    """Output format."""

    text = "text"
    markdown = "markdown"
    json = "json"


FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="The desired-state file (schema v1).")
]
GatesOption = Annotated[
    Path | None,
    typer.Option("--gates", help="Reviewed gates file (default: config/gates.yaml)."),
]
StagesOption = Annotated[
    bool | None,
    typer.Option(
        "--stages/--no-stages",
        help="Mirror legacy stages (default: ML_PROMOTE_STAGES, true).",
    ),
]


def _registry() -> Registry:
    from ml.registry import Registry
    from ml.settings import MLSettings

    return Registry(MLSettings().resolved_tracking_uri())


def _settings() -> PromotionSettings:
    from ml.promotions.config import PromotionSettings

    return PromotionSettings()


@promote_app.command("validate")
@mlops_command
def validate(file: FileOption = Path("promotions.yaml"), gates: GatesOption = None) -> None:
    """Check the spec and every gate against the live registry; non-zero exit on any failure."""
    from dataclasses import replace

    from ml.promotions.gates import load_gates
    from ml.promotions.gates.verdicts import evaluate
    from ml.promotions.reconcile import desired_from, observe
    from ml.promotions.spec import load_spec

    loaded = load_spec(file)
    settings = _settings()
    gates_file = load_gates(gates or settings.gates_file)
    desired = desired_from(loaded)
    registry = _registry()
    observed = observe(registry, [d.name for d in desired], settings.workers)
    cache = settings.cache()
    verdicts = evaluate(registry, observed, desired, gates_file, settings.workers, cache)
    # an entry pinned apart is judged at both versions (production's is `Desired.version`)
    apart = [replace(d, version=d.at("staging")) for d in desired if d.at("staging") != d.version]
    staging = evaluate(registry, observed, apart, gates_file, settings.workers, cache)
    results = [
        r
        for d in desired
        for v in (verdicts[d.name], staging.get(d.name))
        if v is not None
        for r in v.results
    ]
    where = {d.name: d.where for d in desired}
    from rich.markup import escape

    for r in results:
        colour = {"PASS": "green", "FAIL": "red", "WAIVED": "yellow"}[r.label]
        detail = r.detail if r.passed else f"{where[r.model]}: {r.detail}"
        # escaped: a detail's own brackets ("[waived: rollback]") are text, not rich markup
        console.print(
            f"[{colour}]{r.label:6}[/] {escape(f'{r.model} {r.gate}: {detail}')}", highlight=False
        )
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateError(
            f"{len(failed)} gate(s) failed: " + ", ".join(f"{r.model}/{r.gate}" for r in failed)
        )
    waived = [r for r in results if r.waived]
    console.print(
        f"{len(results)} gates passed" + (f", {len(waived)} waived by rollback" if waived else "")
    )


PLAN_CHANGES_EXIT = 20
"""`promote plan --detailed-exitcode` exit when the plan is valid and apply would change
something (0: nothing to change); refusals keep their own codes (5 gates, 7, 8, 16)."""


@promote_app.command("plan")
@mlops_command
def plan(
    file: FileOption = Path("promotions.yaml"),
    fmt: Annotated[
        Format, typer.Option("--format", help="text, markdown (PR comment) or json.")
    ] = Format.text,
    stages: StagesOption = None,
    gates: GatesOption = None,
    with_gates: Annotated[
        bool,
        typer.Option(
            "--with-gates/--without-gates",
            help="Evaluate the gates of every move that changes an alias (default) and show "
            "their verdicts; --without-gates is a fast registry read whose output says first "
            "that no gate was evaluated.",
        ),
    ] = True,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help=f"Exit {PLAN_CHANGES_EXIT} when the plan is valid and has changes, 0 when it "
            "has none (like terraform plan -detailed-exitcode); refusals keep their codes.",
        ),
    ] = False,
) -> None:
    """Show, per model and environment, current → desired and the gate verdicts.

    Exit 0: valid; 5: a gate failed (the failing gates are named); 7: refused (missing version,
    staging first); 8: `rollback: true` to a version production never ran; 16: interrupted.
    ROLLBACK marks a step back, RE-SYNC a return to the version git last applied.
    """
    from ml.promotions.gates import load_gates
    from ml.promotions.gates.verdicts import gated_diff
    from ml.promotions.plan import Plan
    from ml.promotions.reconcile import desired_from, observe, refusal_error
    from ml.promotions.records import ENVIRONMENTS
    from ml.promotions.spec import load_spec

    desired = desired_from(load_spec(file))
    settings = _settings()
    gates_file = load_gates(gates or settings.gates_file) if with_gates else None
    registry = _registry()
    observed = observe(registry, [d.name for d in desired], settings.workers)
    actions = gated_diff(
        registry,
        desired,
        observed,
        ENVIRONMENTS,
        gates_file,
        stages=settings.stages if stages is None else stages,
        workers=settings.workers,
        cache=settings.cache(),
    )
    result = Plan(actions, gated=gates_file is not None)
    out = {Format.text: result.text, Format.markdown: result.markdown, Format.json: result.json}
    typer.echo(out[fmt]())
    error = refusal_error(actions)
    failing = result.failing()
    if failing and (error is None or isinstance(error, GateError)):
        raise GateError("gates failed: " + "; ".join(failing) + " (details in the plan above)")
    if error is not None:
        raise error
    if detailed_exitcode and result.changes:
        raise typer.Exit(PLAN_CHANGES_EXIT)


@promote_app.command("apply")
@mlops_command
def apply(
    env: Annotated[Env, typer.Option("--env", help="Environment (alias) to converge.")],
    file: FileOption = Path("promotions.yaml"),
    gates: GatesOption = None,
    stages: StagesOption = None,
    allow_skip_staging: Annotated[
        bool,
        typer.Option(
            "--allow-skip-staging", help="Let production take a version never applied to staging."
        ),
    ] = False,
    sha: Annotated[
        str | None, typer.Option("--git-sha", help="Commit to record (default: GITHUB_SHA/HEAD).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who applies (default: GITHUB_ACTOR/user).")
    ] = None,
    pr: Annotated[
        str | None, typer.Option("--pr", help="PR number to record (default: PR_NUMBER).")
    ] = None,
    run_url: Annotated[
        str | None, typer.Option("--run-url", help="Workflow run URL (default: from GITHUB_*).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=32, help="Models applied concurrently (ML_PROMOTE_WORKERS)."
        ),
    ] = None,
) -> None:
    """Move aliases (and mirror stages) to the spec's versions under a lease; verify; idempotent."""
    from ml.promotions.apply import ApplyContext, ApplyOptions, apply_spec
    from ml.promotions.gates import load_gates
    from ml.promotions.reconcile import desired_from
    from ml.promotions.spec import load_spec

    desired = desired_from(load_spec(file))
    settings = _settings()
    gates_file = load_gates(gates or settings.gates_file)
    options = ApplyOptions(
        stages=settings.stages if stages is None else stages,
        allow_skip_staging=allow_skip_staging,
        workers=workers or settings.workers,
        lease_seconds=settings.lease_seconds,
        settle=settings.lease_settle,
        cache=settings.cache(),
    )
    ctx = ApplyContext.from_env(git_sha_=sha, actor=actor, pr=pr, run_url=run_url)
    actions = apply_spec(_registry(), desired, env.value, ctx, gates=gates_file, options=options)
    for a in actions:
        if a.writes:
            done = "; ".join(w.detail for w in a.writes if w.detail)
            kind = " (re-sync: recorded as a repair)" if a.resync else ""
            console.print(f"{a.model}: {a.env} → v{a.desired}{kind}: {done}", markup=False)
        else:
            console.print(f"{a.model}: {a.env} v{a.desired}: nothing changed", markup=False)
    if not any(a.writes for a in actions):
        console.print("nothing changed")


@promote_app.command("status")
@mlops_command
def status(
    file: FileOption = Path("promotions.yaml"),
    env: Annotated[
        Env | None, typer.Option("--env", help="Check one environment only (default: both).")
    ] = None,
    stages: StagesOption = None,
    fail_on_pending: Annotated[
        bool, typer.Option("--fail-on-pending", help="Also exit non-zero when apply is pending.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Git against the registry: exit 6 on drift, 16 on an interrupted apply or deploy."""
    from ml.promotions import ENVIRONMENTS
    from ml.promotions.reconcile import desired_from, diff, observe
    from ml.promotions.spec import load_spec
    from ml.promotions.status import (
        EnvStatus,
        lease_rows,
        status_error,
        status_json,
        with_leases,
    )

    desired = desired_from(load_spec(file))
    settings = _settings()
    names = [d.name for d in desired]
    observed = observe(_registry(), names, settings.workers)
    envs = (env.value,) if env else ENVIRONMENTS
    actions = diff(desired, observed, envs, stages=settings.stages if stages is None else stages)
    rows = with_leases([EnvStatus.of(a, file) for a in actions], lease_rows(observed, names))
    if as_json:
        typer.echo(status_json(rows))
    else:
        from rich.markup import escape

        colours = {"in-sync": "green", "pending": "yellow", "interrupted": "magenta"}
        for r in rows:
            colour = colours.get(r.state, "red")
            fix = f" (fix: {r.fix})" if r.fix else ""
            console.print(
                f"[{colour}]{r.state:11}[/] {escape(f'{r.model} {r.message}{fix}')}",
                highlight=False,
            )
            if r.lease:
                console.print(f"[yellow]{'lease':11}[/] {escape(r.lease)}", highlight=False)
    error = status_error(rows, fail_on_pending=fail_on_pending)
    from ml.deploy import pinned  # alias vs the running pin; tampered release records

    unpinned = pinned.findings(_registry())
    for finding in unpinned:
        (err_console if as_json else console).print(f"[red]{'drift':11}[/] {finding}")
    if error is None and unpinned:
        error = DriftError("; ".join(unpinned))
    if error is not None:
        raise error


@mlops_command
def history(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    file: FileOption = Path("promotions.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Timeline of promotions and rollbacks: git log of the file joined with registry tags."""
    from ml.promotions.history import events_json
    from ml.promotions.history import history as timeline

    state = _registry().model_state(model)
    events = timeline(file, model, state)
    if as_json:
        typer.echo(events_json(events))
        return
    from ml.deploy.approval import approval_lines  # who approved each release's production job
    from ml.promotions.render import terminal

    for line in approval_lines(state.tags if state else {}):
        console.print(terminal(line), markup=False, highlight=False)
    for e in events:
        move = f"{e.from_version or 'none'} → {e.to_version}"
        flag = " ROLLBACK" if e.rollback else ""
        prod = e.production or {}
        applied = f" | production {prod.get('time')} by {prod.get('actor')}" if prod else ""
        pr = f" PR #{e.pr}" if e.pr else ""
        data = f" | data {e.data}" if e.data else ""
        console.print(
            terminal(
                f"{e.when} {e.commit} {e.author}{pr}: {move}{flag} — {e.subject}{applied}{data}"
            ),
            markup=False,
            highlight=False,
        )
        for r in e.repairs:
            console.print(
                terminal(
                    f"    REPAIR {r.get('environment')}: re-synced to v{r.get('version')} at "
                    f"{r.get('time')} by {r.get('actor')} (the alias had been moved outside git "
                    f"to v{r.get('previous')})"
                ),
                markup=False,
                highlight=False,
            )
    if not events:
        err_console.print(f"no history for {model} in {file}")


@mlops_command
def rollback(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    to: Annotated[
        int | None, typer.Option("--to", help="Version to roll back to (default: previous prod).")
    ] = None,
    file: FileOption = Path("promotions.yaml"),
    reason: Annotated[str | None, typer.Option("--reason", help="Why; goes in the note.")] = None,
    commit: Annotated[
        bool, typer.Option("--commit", help="Create a branch and commit the edit.")
    ] = False,
    pr: Annotated[
        bool, typer.Option("--pr", help="Push and open the PR with gh (implies --commit).")
    ] = False,
) -> None:
    """Edit promotions.yaml back to the previous production version (comments kept)."""
    from ml.promotions.rollback import commit_rollback, open_pr, write_rollback

    result = write_rollback(file, model, _registry().model_state(model), to, reason)
    console.print(f"{file}: {model} → v{result.to_version} ({result.note})", markup=False)
    if commit or pr:
        branch = commit_rollback(file, result)
        console.print(f"committed on branch {branch}", markup=False)
        if pr:
            console.print(open_pr(file, result, branch), markup=False)


@promote_app.command("unlock")
@mlops_command
def unlock(
    env: Annotated[Env, typer.Option("--env", help="Environment whose lease to release.")],
    file: FileOption = Path("promotions.yaml"),
    model: Annotated[
        str | None, typer.Option("--model", help="One model (default: every model in the spec).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Release a lease whose holder may be alive (it may be mid-write)."
        ),
    ] = False,
) -> None:
    """Release a lease a failed run left: expired, or held by a process that is gone (exit 11
    when the holder may be alive; --force overrides)."""
    from ml.promotions.records import LEASE_TAG, Lease, holder_alive, lease_tag
    from ml.promotions.spec import load_spec

    names = [model] if model else list(load_spec(file).spec.models)
    registry = _registry()
    refused = []
    released = 0
    for name in names:
        tags = registry.model_tags(name)
        for tag in (lease_tag(env.value), LEASE_TAG):
            lease = Lease.parse(tags.get(tag))
            if lease is None:
                continue
            gone = not lease.live() or holder_alive(lease.owner) is False
            if not gone and not force:
                refused.append(f"{name} ({tag}): held by {lease.holder()}")
                continue
            registry.delete_model_tag(name, tag)
            released += 1
            console.print(f"released {name} {tag} (was {lease.holder()})", markup=False)
    if refused:
        raise LeaseError(
            "live lease(s), not released: "
            + "; ".join(refused)
            + " (hint: wait for the holder, or pass --force if you know it is dead)"
        )
    if not released:
        console.print(f"no lease in {env.value}", markup=False)


@mlops_command
def versions(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every version of a model: aliases, stage, key metrics, data version, when and by whom
    each environment got it."""
    from ml.errors import RegistryError
    from ml.promotions.versions import version_rows, versions_json, versions_text

    registry = _registry()
    state = registry.model_state(model)
    if state is None:
        raise RegistryError(f"{model} is not registered (hint: check the name)")
    rows = version_rows(registry, state)
    typer.echo(versions_json(model, rows) if as_json else versions_text(model, rows))
