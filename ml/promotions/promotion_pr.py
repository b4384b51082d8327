"""The promotion pull request a retrain opens, and the metric comparison reviewers read.

`open_promotion_pr` edits promotions.yaml to the new version (comments kept, the rollback
waiver removed), commits it on `promote/<model>-v<N>`, pushes and opens the PR with `gh`. It
never merges: CI, the model approvers (CODEOWNERS) and CD do the rest. `open_promotion_pr_in_clone`
does the same in a fresh clone of the remote's default branch, for a long-lived checkout (an
Airflow worker) that must stay on its branch. `compare` puts the
candidate's holdout metrics next to production's; `mlops evaluate --report` prints the same table.

No side effect before the preconditions hold (`preflight`): `gh` installed, an `origin` remote,
and (in the current checkout) no uncommitted change to tracked files and no local branch of that
name. What it does make (a branch, a commit, a push) is reported in `PrOpened`, and the current
checkout is switched back to the branch it was on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ml.adapters import actions, git, github
from ml.errors import ConfigError, GitHubError, RegistryError
from ml.promotions.spec import edit_entry
from ml.registry import Registry

# Metrics shown in the comparison, and whether higher is better.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "ks": True,
    "brier": False,
    "log_loss": False,
}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class Comparison:
    """Metrics of the candidate and of production (None when nothing is in production)."""

    model: str
    candidate: int
    production: int | None
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float]

    def markdown(self) -> str:
        """A table a reviewer reads in the PR body and the job summary."""
        prod = f"v{self.production}" if self.production else "(none)"
        lines = [
            f"| metric | candidate v{self.candidate} | production {prod} | change |",
            "|---|---:|---:|---|",
        ]
        names = [m for m in METRICS if m in self.candidate_metrics] or sorted(
            self.candidate_metrics
        )
        for name in names:
            new, old = self.candidate_metrics.get(name), self.production_metrics.get(name)
            change = ""
            if new is not None and old is not None:
                delta = new - old
                better = (delta > 0) == METRICS.get(name, True) if delta else None
                change = (
                    f"{delta:+.4f} ({ {True: 'better', False: 'worse', None: 'same'}[better] })"
                )
            lines.append(f"| {name} | {_fmt(new)} | {_fmt(old)} | {change} |")
        return "\n".join(lines)

    def report(self) -> str:
        """The evaluation report: a heading and the table."""
        return f"### Evaluation: {self.model} v{self.candidate}\n\n{self.markdown()}\n"

    def note(self) -> str:
        """The promotions.yaml note: `retrain v5; AUC 0.7810 vs 0.7760`."""
        auc, old = self.candidate_metrics.get("roc_auc"), self.production_metrics.get("roc_auc")
        text = f"retrain v{self.candidate}" + (f"; AUC {auc:.4f}" if auc is not None else "")
        return text + (f" vs {old:.4f}" if old is not None else "")


def compare(registry: Registry, model: str, version: int) -> Comparison:
    """Holdout metrics logged with `version` and with the version `production` points at."""
    candidate = registry.get_version(model, version)
    if candidate is None:
        raise RegistryError(f"{model} v{version} is not in the registry")
    production = registry.get_by_alias(model, "production")
    return Comparison(
        model=model,
        candidate=version,
        production=production.version if production else None,
        candidate_metrics=registry.run_metrics(candidate.run_id) if candidate.run_id else {},
        production_metrics=(
            registry.run_metrics(production.run_id) if production and production.run_id else {}
        ),
    )


def promotion_branch(model: str, version: int) -> str:
    """The branch a promotion PR is pushed on."""
    return f"promote/{model}-v{version}"


@dataclass(frozen=True)
class PrOpened:
    """What `pr open` did: the PR, and every branch, commit and push it made."""

    url: str
    branch: str
    commit: str | None
    steps: tuple[str, ...] = field(default=())


def preflight(repo: Path, branch: str, *, checkout: bool, include: Sequence[Path] = ()) -> None:
    """Raise `GitHubError` (exit 12) before any side effect when the PR cannot be opened.

    `checkout`: the current checkout is edited (not a fresh clone), so its tracked files must be
    clean (but for the `include` paths, which the PR commits) and the branch must not exist
    locally.
    """
    github.gh_path()
    remotes = git.git("remote", cwd=repo).split()
    if "origin" not in remotes:
        raise GitHubError(
            f"{repo}: no `origin` remote to push the branch to (hint: `git remote add origin "
            "URL`, or pass --clone URL)"
        )
    if not checkout:
        return
    allowed = [p.resolve() for p in include]
    status = git.git("status", "--porcelain", "--untracked-files=no", cwd=repo)
    # "XY PATH" lines; the output comes stripped, so the first line may have lost a blank X.
    paths = [line.split(maxsplit=1)[1] for line in status.splitlines() if line.strip()]
    dirty = [
        path
        for path in paths
        if not any((repo / path).resolve().is_relative_to(a) for a in allowed)
    ]
    if dirty:
        files = ", ".join(dirty[:5])
        raise GitHubError(
            f"{repo}: uncommitted changes ({files}); nothing was changed (hint: commit or stash "
            "them, or pass --clone origin to work in a fresh clone)"
        )
    if not actions.in_actions():  # Actions commits as the bot (`commit_on_branch`)
        try:
            git.git("var", "GIT_COMMITTER_IDENT", cwd=repo)
        except GitHubError:
            raise GitHubError(
                "git has no identity to commit with; nothing was changed (hint: git config "
                "user.name / user.email)"
            ) from None
    exists = git.git("branch", "--list", branch, cwd=repo)
    if exists.strip():
        raise GitHubError(
            f"{repo}: branch {branch} exists already; nothing was changed (hint: delete it with "
            f"`git branch -D {branch}` or promote another version)"
        )


def _undo(repo: Path, spec: Path, start: str, branch: str) -> None:
    """Put the checkout back as it was after a failed commit (best effort, each step alone)."""
    for args in (
        ("reset", "-q", "--", str(spec)),
        ("checkout", "--", str(spec)),
        ("switch", start),
        ("branch", "-D", branch),
    ):
        try:
            git.git(*args, cwd=repo)
        except GitHubError:
            continue


def open_promotion_pr(
    registry: Registry,
    model: str,
    version: int,
    spec_path: Path,
    *,
    pushed: bool = False,
    checkout: bool = True,
    include: Sequence[Path] = (),
) -> PrOpened:
    """Check, then branch, edit, commit, push and `gh pr create`. Never merges.

    `pushed`: the branch is on origin already (a retried step); only the PR is opened.
    `checkout`: `spec_path` is in the user's checkout (switched back to its branch afterwards).
    `include`: more paths committed with the spec (the DVC pipeline's `dvc.lock` and reports);
    they may be the checkout's only uncommitted changes.
    """
    repo = spec_path.resolve().parent
    branch = promotion_branch(model, version)
    preflight(repo, branch, checkout=checkout and not pushed, include=include)
    cmp = compare(registry, model, version)
    steps: list[str] = []
    commit: str | None = None
    if not pushed:
        start = git.git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo)
        edit_entry(spec_path, model, version=version, note=cmp.note(), rollback=False)
        try:
            git.commit_on_branch(
                repo,
                branch,
                [spec_path.resolve(), *(p.resolve() for p in include)],
                f"promote({model}): v{version}\n\n{cmp.note()}",
            )
        except GitHubError:
            _undo(repo, spec_path.resolve(), start, branch)
            raise
        commit = git.git("rev-parse", "HEAD", cwd=repo)
        steps.append(f"created branch {branch} from {start} with commit {commit[:12]}")
        if checkout and start != "HEAD":
            git.git("switch", start, cwd=repo)
            steps.append(f"switched the checkout back to {start}")
    run = actions.run_url()
    body = "\n".join(
        [
            f"Promotes **{model}** to **v{version}** (written by the `retrain` workflow).",
            "",
            cmp.markdown(),
            "",
            f"Training run: {run}" if run else "",
            "CI validates the gates and posts the plan; merging deploys to staging, then "
            "production after approval. This PR is never merged automatically.",
        ]
    )
    title = f"Promote {model} to v{version}"
    try:
        url = github.push_and_open_pr(repo, branch, title, body, push=not pushed)
    except GitHubError as exc:
        made = "; ".join(steps) or "nothing"
        raise GitHubError(f"{exc} (made before the failure: {made})") from None
    steps.append(f"pushed {branch} to origin" if not pushed else f"{branch} was on origin already")
    steps.append(f"opened {url}")
    return PrOpened(url, branch, commit, tuple(steps))


def open_promotion_pr_in_clone(
    registry: Registry, model: str, version: int, remote: str, spec_path: Path
) -> PrOpened:
    """`open_promotion_pr` in a throw-away clone of `remote`'s default branch.

    `remote` is a URL, a path, or the name of a remote of the current checkout (`origin`). The
    current checkout is left as it is (branch, index, files), and the PR starts from the
    remote's latest default branch rather than from whatever the checkout holds.

    Retry-safe (an orchestrator retries a failed task): when the remote already has the
    promotion branch with this version in the file (the push of an earlier attempt went through,
    `gh` did not), only the PR is opened; a branch with other content is an error, never
    overwritten.

    Raises:
        GitHubError: git or gh failed, or the branch exists on the remote with other content.
    """
    import tempfile

    from ml.promotions.spec import load_spec

    if spec_path.is_absolute():
        raise ConfigError(f"--file {spec_path}: with --clone, give the path inside the repository")
    github.gh_path()  # before the clone: no work when the PR cannot be opened
    url = git.remote_url(remote)
    branch = promotion_branch(model, version)
    with tempfile.TemporaryDirectory(prefix="promotion-pr-") as tmp:
        work = Path(tmp) / "repo"
        git.clone(url, work)
        existing = git.remote_file(work, branch, spec_path.as_posix())
        if existing is not None:
            pushed_spec = Path(tmp) / "pushed.yaml"
            pushed_spec.write_text(existing, encoding="utf-8")
            entry = load_spec(pushed_spec).spec.models.get(model)
            if entry is None or entry.version_in("production") != version:
                raise GitHubError(
                    f"{branch} exists on the remote with other content (hint: delete the branch "
                    "or promote another version)"
                )
        return open_promotion_pr(
            registry, model, version, work / spec_path, pushed=existing is not None, checkout=False
        )
