"""The promotion pull request a retrain opens, and the metric comparison reviewers read.

`open_promotion_pr` edits promotions.yaml to the new version (comments kept, the rollback
waiver removed), commits it on `promote/<model>-v<N>`, pushes and opens the PR with `gh`. It
never merges: CI, the model approvers (CODEOWNERS) and CD do the rest. `open_promotion_pr_in_clone`
does the same in a fresh clone of the remote's default branch, for a long-lived checkout (an
Airflow worker) that must stay on its branch. `compare` puts the
candidate's holdout metrics next to production's; `mlops evaluate --report` prints the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ml import github
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


def open_promotion_pr(
    registry: Registry,
    model: str,
    version: int,
    spec_path: Path,
    *,
    pushed: bool = False,
    include: Sequence[Path] = (),
) -> str:
    """Branch, edit, commit, push and `gh pr create`; return the PR URL. Never merges.

    `pushed`: the branch is on origin already (a retried step); only the PR is opened.
    `include`: more paths committed with the spec (the DVC pipeline's `dvc.lock` and reports).
    """
    cmp = compare(registry, model, version)
    repo = spec_path.resolve().parent
    branch = promotion_branch(model, version)
    if not pushed:
        edit_entry(spec_path, model, version=version, note=cmp.note(), rollback=False)
        github.commit_on_branch(
            repo,
            branch,
            [spec_path.resolve(), *(p.resolve() for p in include)],
            f"promote({model}): v{version}\n\n{cmp.note()}",
        )
    run = github.run_url()
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
    return github.push_and_open_pr(repo, branch, title, body, push=not pushed)


def open_promotion_pr_in_clone(
    registry: Registry, model: str, version: int, remote: str, spec_path: Path
) -> str:
    """`open_promotion_pr` in a throw-away clone of `remote`'s default branch; the PR URL.

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
    url = github.remote_url(remote)
    branch = promotion_branch(model, version)
    with tempfile.TemporaryDirectory(prefix="promotion-pr-") as tmp:
        work = Path(tmp) / "repo"
        github.clone(url, work)
        existing = github.remote_file(work, branch, spec_path.as_posix())
        if existing is not None:
            pushed_spec = Path(tmp) / "pushed.yaml"
            pushed_spec.write_text(existing, encoding="utf-8")
            entry = load_spec(pushed_spec).spec.models.get(model)
            if entry is None or entry.version != version:
                raise GitHubError(
                    f"{branch} exists on the remote with other content (hint: delete the branch "
                    "or promote another version)"
                )
        return open_promotion_pr(
            registry, model, version, work / spec_path, pushed=existing is not None
        )
