"""Does each workflow read exactly what config/platform.yaml lists for it? (`vars.X` and
`secrets.X` in .github/workflows/*.yml against the list; the workflow tests and `mlops platform
check` use it.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ml.platform.config import Kind, PlatformConfig

# `vars.X` / `secrets.X` inside a workflow; GITHUB_TOKEN is GitHub's own, never configured.
READ_RE = re.compile(r"\b(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")
BUILTIN_SECRETS = frozenset({"GITHUB_TOKEN"})


def workflow_reads(workflows_dir: Path) -> dict[str, set[tuple[Kind, str]]]:
    """Per workflow (file stem): every `vars.X` / `secrets.X` it mentions, GITHUB_TOKEN aside."""
    reads: dict[str, set[tuple[Kind, str]]] = {}
    for path in sorted(workflows_dir.glob("*.yml")):
        found: set[tuple[Kind, str]] = set()
        for prefix, name in READ_RE.findall(path.read_text()):
            if prefix == "secrets" and name in BUILTIN_SECRETS:
                continue
            found.add(("variable" if prefix == "vars" else "secret", name))
        reads[path.stem] = found
    return reads


def declared_reads(config: PlatformConfig, workflow: str) -> set[tuple[Kind, str]]:
    """What the list says `workflow` reads."""
    return {(kind, e.name) for kind, e in config.entries() if workflow in e.required_by}


def workflow_problems(
    config: PlatformConfig, workflows_dir: Path, only: Iterable[str] | None = None
) -> list[str]:
    """Differences between the list and the workflows, one line each (empty = they agree)."""
    reads = workflow_reads(workflows_dir)
    names = sorted(set(reads) | set(config.workflows())) if only is None else sorted(only)
    problems: list[str] = []
    for workflow in names:
        actual, declared = reads.get(workflow, set()), declared_reads(config, workflow)
        for kind, name in sorted(actual - declared):
            problems.append(
                f"{workflow}.yml reads {kind} {name}, which config/platform.yaml does not list "
                f"for {workflow} (add it, with its scope and source)"
            )
        for kind, name in sorted(declared - actual):
            problems.append(
                f"config/platform.yaml lists {kind} {name} as required by {workflow}, "
                f"which {workflow}.yml does not read"
            )
    return problems
