"""Retrain helper for the `retrain` workflow: train, report, open the promotion pull request.

    python scripts/open_promotion_pr.py retrain   # TRAIN_MODEL, TRAIN_PARAMS, TRAIN_DATA(_SHA256)
    python scripts/open_promotion_pr.py report    # MODEL_VERSION -> build/evaluation.md
    python scripts/open_promotion_pr.py open      # MODEL_VERSION -> branch, commit, `gh pr create`

`open` edits promotions.yaml with ruamel.yaml in round-trip mode (comments and layout stay),
validates the result with the promotions engine, commits it on a new branch, pushes it (git
credentials from `gh auth setup-git`) and opens the pull request with `gh pr create`. The body
compares the new version's holdout metrics with production's. It never merges: CI, the model
approvers (CODEOWNERS) and CD do the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ml.errors import MlopsError

# Metrics shown in the comparison, and whether higher is better.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "ks": True,
    "brier": False,
    "log_loss": False,
}


class PromotionPrError(MlopsError):
    """Training, reporting or opening the pull request failed; the message says which."""


@dataclass(frozen=True)
class Comparison:
    """Metrics of the candidate and of production (None when nothing is in production)."""

    model: str
    candidate: int
    production: int | None
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float]

    def markdown(self) -> str:
        """A table a reviewer reads in the PR body."""
        prod = f"v{self.production}" if self.production else "(none)"
        lines = [
            f"| metric | candidate v{self.candidate} | production {prod} | change |",
            "|---|---:|---:|---|",
        ]
        names = [m for m in METRICS if m in self.candidate_metrics] or sorted(
            self.candidate_metrics
        )
        for name in names:
            new = self.candidate_metrics.get(name)
            old = self.production_metrics.get(name)
            change = ""
            if new is not None and old is not None:
                delta = new - old
                better = (delta > 0) == METRICS.get(name, True) if delta else None
                mark = {True: "better", False: "worse", None: "same"}[better]
                change = f"{delta:+.4f} ({mark})"
            lines.append(f"| {name} | {_fmt(new)} | {_fmt(old)} | {change} |")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def merged_train_config(base: dict[str, Any], params: dict[str, Any], model: str | None) -> dict:
    """`params` over config/train.yaml: keyed by candidate, or flat for the chosen `model`."""
    merged = json.loads(json.dumps(base))
    candidates = merged.setdefault("candidates", {})
    if params and all(k in ("xgboost", "logreg") for k in params):
        per_kind = params
    elif params:
        if not model:
            raise PromotionPrError(
                "flat params need a model type (or key them by candidate: "
                '{"xgboost": {"max_depth": 4}})'
            )
        per_kind = {model: params}
    else:
        per_kind = {}
    for kind, values in per_kind.items():
        if not isinstance(values, dict):
            raise PromotionPrError(f"params for {kind} must be a JSON object")
        candidates[kind] = {**(candidates.get(kind) or {}), **values}
    return merged


def set_version(spec_path: Path, model: str, version: int, note: str) -> None:
    """Round-trip edit of promotions.yaml; the result must pass the contract."""
    from ml.promotions.spec import load_spec

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    data = yaml.load(spec_path.read_text(encoding="utf-8"))
    models = data.setdefault("models", {})
    if model not in models or models[model] is None:
        models[model] = {}
    node = models[model]
    node["version"] = version
    node["note"] = note
    node.pop("rollback", None)  # a promotion is not a rollback: the regression gate applies
    with spec_path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    load_spec(spec_path)


def _registry() -> tuple[Any, str]:
    from ml.registry import Registry
    from ml.settings import MLSettings

    settings = MLSettings()
    return Registry(settings.resolved_tracking_uri()), settings.model_name


def compare(version: int) -> Comparison:
    """Holdout metrics of `version` and of the version `production` points at."""
    registry, model = _registry()
    candidate = registry.get_version(model, version)
    if candidate is None:
        raise PromotionPrError(f"{model} v{version} is not in the registry")
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


def _output(**values: str) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for key, value in values.items():
                out.write(f"{key}={value}\n")


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise PromotionPrError(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def retrain(env: dict[str, str]) -> int:
    """Train with the workflow's inputs; return (and output) the newly registered version."""
    registry, model = _registry()
    before = max((v.version for v in registry.versions(model)), default=0)
    kind = env.get("TRAIN_MODEL") or None
    kind = None if kind == "both" else kind
    params = json.loads(env.get("TRAIN_PARAMS") or "{}")
    if not isinstance(params, dict):
        raise PromotionPrError("TRAIN_PARAMS must be a JSON object")
    child_env = dict(env)
    if params:
        import yaml as pyyaml

        base_path = Path(env.get("ML_TRAIN_CONFIG", "config/train.yaml"))
        merged = merged_train_config(pyyaml.safe_load(base_path.read_text()) or {}, params, kind)
        out = Path("build/train.yaml")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(pyyaml.safe_dump(merged, sort_keys=False))
        child_env["ML_TRAIN_CONFIG"] = str(out)
    cmd = [str(Path(sys.executable).with_name("mlops")), "train"]
    if kind:
        cmd += ["--model", kind]
    if env.get("TRAIN_DATA"):
        if not env.get("TRAIN_DATA_SHA256"):
            raise PromotionPrError("a data URI needs its sha256 (data-sha256 input)")
        cmd += ["--data", env["TRAIN_DATA"], "--data-sha256", env["TRAIN_DATA_SHA256"]]
    done = subprocess.run(cmd, env=child_env, check=False, timeout=3600)
    if done.returncode != 0:
        raise PromotionPrError(f"mlops train exited {done.returncode}")
    after = max((v.version for v in registry.versions(model)), default=0)
    if after <= before:
        raise PromotionPrError(f"training registered no new version of {model} (still v{after})")
    _output(version=str(after))
    print(after)
    return after


def report(version: int) -> str:
    """Evaluation report (markdown) to build/evaluation.md and the job summary."""
    cmp = compare(version)
    text = f"### Evaluation: {cmp.model} v{version}\n\n{cmp.markdown()}\n"
    Path("build").mkdir(exist_ok=True)
    Path("build/evaluation.md").write_text(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(text)
    print(text)
    return text


def open_pr(version: int, spec_path: Path = Path("promotions.yaml")) -> str:
    """Branch, commit, push and `gh pr create`; return the PR URL. Never merges."""
    gh = shutil.which("gh")
    if gh is None:
        raise PromotionPrError("`gh` (GitHub CLI) is not installed (https://cli.github.com)")
    cmp = compare(version)
    run_url = ""
    if os.environ.get("GITHUB_RUN_ID"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repo = os.environ.get("GITHUB_REPOSITORY", "")
        run_url = f"{server}/{repo}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    auc = cmp.candidate_metrics.get("roc_auc")
    old_auc = cmp.production_metrics.get("roc_auc")
    note = f"retrain v{version}" + (f"; AUC {auc:.4f}" if auc is not None else "")
    if old_auc is not None:
        note += f" vs {old_auc:.4f}"
    branch = f"promote/{cmp.model}-v{version}"
    _run(gh, "auth", "setup-git")
    _run("git", "switch", "-c", branch)
    set_version(spec_path, cmp.model, version, note)
    _run("git", "add", str(spec_path))
    _run(
        "git",
        "-c", "user.name=github-actions[bot]",
        "-c", "user.email=41898282+github-actions[bot]@users.noreply.github.com",
        "commit", "-m", f"promote({cmp.model}): v{version}", "-m", note,
    )  # fmt: skip
    _run("git", "push", "-u", "origin", branch)
    body = "\n".join(
        [
            f"Promotes **{cmp.model}** to **v{version}** (written by the `retrain` workflow).",
            "",
            cmp.markdown(),
            "",
            f"Training run: {run_url}" if run_url else "",
            "CI validates the gates and posts the plan; merging deploys to staging, then "
            "production after approval. This PR is never merged automatically.",
        ]
    )
    return _run(
        gh, "pr", "create", "--head", branch,
        "--title", f"Promote {cmp.model} to v{version}", "--body", body,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point: one error line and a non-zero exit on failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["retrain", "report", "open"])
    parser.add_argument("--version", type=int, default=None, help="default: MODEL_VERSION")
    args = parser.parse_args(argv)
    try:
        if args.command == "retrain":
            retrain(dict(os.environ))
            return 0
        version = args.version or int(os.environ.get("MODEL_VERSION") or 0)
        if version <= 0:
            raise PromotionPrError("no version: set MODEL_VERSION or --version")
        if args.command == "report":
            report(version)
        else:
            print(open_pr(version))
    except MlopsError as exc:
        print(f"::error title={args.command}::{exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
