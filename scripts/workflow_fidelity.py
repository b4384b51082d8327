"""List every `run:` step of every workflow (and composite action) with the test exercising it.

A step is one `make TARGET` or one `python scripts/NAME.py`. For a make target the recipe is
resolved with `make -n` (dry run) and what it calls is looked up in tests/:

- `scripts/NAME.py`  -> tests that name the script (path, file name or `import NAME`)
- `mlops VERB [SUB]` -> tests that run that verb (`"promote", "validate"` or "promote validate";
  SUB only for verbs that have sub-verbs, read from the CLI)
- `pytest PATH`      -> the test files under PATH
- a few targets wrap tools rather than project code (ruff, mypy, ...); `EXPLICIT` names the
  test that runs them.

`make workflow-fidelity` prints the table and "X of Y steps exercised by a test"; with
`--check` it exits 1 when a step has none (tests/unit/workflows asserts that too).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `ml` from this checkout when run as a script

# Steps whose recipe runs a tool over the repository, not project code: the test that runs it.
EXPLICIT: dict[str, list[str]] = {
    "install": ["tests/unit/workflows/test_make_targets.py"],
    "lint": ["tests/unit/workflows/test_make_targets.py"],
    "typecheck": ["tests/unit/workflows/test_make_targets.py"],
    "unit": ["tests/unit"],
    "ci-status": ["tests/unit/workflows/test_make_targets.py"],
    "workflow-lint": ["tests/unit/workflows/test_workflow_lint.py"],
    "workflow-lint-online": ["tests/unit/workflows/test_workflow_lint.py"],
    "scan": ["tests/unit/workflows/test_scan_target.py"],
    # terraform: the recipes name only scripts/init.sh, which any test saying "init" would match.
    "tf-check": [
        "tests/unit/test_terraform_variables.py",
        "tests/integration/test_terraform_moto.py",
    ],
    "tf-plan": [
        "tests/unit/workflows/test_make_targets.py",
        "tests/integration/test_terraform_moto.py",
    ],
    "tf-apply-plan": [
        "tests/unit/workflows/test_make_targets.py",
        "tests/unit/workflows/test_terraform_contract.py",
        "tests/integration/test_terraform_moto.py",
    ],
    # The plan artefact's name and lookup: the verb's tests, and the contract that plan and
    # apply compute the same name.
    "tf-plan-name": [
        "tests/unit/test_reviewed_plan.py",
        "tests/unit/workflows/test_terraform_contract.py",
    ],
    "tf-plan-find": [
        "tests/unit/test_reviewed_plan.py",
        "tests/unit/workflows/test_terraform_contract.py",
    ],
    # `mlops platform data-source`: the allow-list's tests.
    "retrain-data-allowed": ["tests/unit/test_platform.py"],
    # apt-get through sudo on a runner: only its recipe can be checked here.
    "ci-monitoring-deps": ["tests/unit/workflows/test_make_targets.py"],
    # Installs the linters test_workflow_lint.py runs (and fails without).
    "test-tools": ["tests/unit/workflows/test_workflow_lint.py"],
}

SCRIPT_RE = re.compile(r"scripts/([\w-]+)\.(?:py|sh)")
MLOPS_RE = re.compile(r"(?:^|[\s/])mlops\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?")
PYTEST_RE = re.compile(r"\bpytest\s+((?:tests/\S*\s*)+)")
MAKE_RE = re.compile(r"^make\s+([\w.-]+)")
PY_SCRIPT_RE = re.compile(r"^(?:\S*python3?)\s+(scripts/\S+)")


@dataclass
class Step:
    """One `run:` step and what exercises it."""

    workflow: str
    job: str
    name: str
    command: str
    calls: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)


def workflow_files(root: Path = ROOT) -> list[Path]:
    """Every workflow and composite action."""
    gh = root / ".github"
    return sorted(gh.glob("workflows/*.yml")) + sorted(gh.glob("actions/*/action.yml"))


def run_steps(root: Path = ROOT) -> list[Step]:
    """Every step with a `run:` key, in file order."""
    steps: list[Step] = []
    for path in workflow_files(root):
        doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
        rel = str(path.relative_to(root))
        jobs = doc.get("jobs") or {}
        if "runs" in doc:
            jobs = {"(composite)": {"steps": doc["runs"].get("steps") or []}}
        for job_id, job in jobs.items():
            for step in job.get("steps") or []:
                if "run" in step:
                    command = " ".join(str(step["run"]).split())
                    steps.append(Step(rel, job_id, step.get("name", command), command))
    return steps


def make_recipe(target: str, root: Path = ROOT) -> str:
    """What `make TARGET` would run (dry run), or "" when the target does not exist."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "ENV=staging"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


def verb_groups() -> set[str]:
    """`mlops` verbs that take a sub-verb (promote, pr, ...), read from the CLI itself."""
    import typer

    from ml.cli import app

    root = typer.main.get_command(app)
    return {name for name, cmd in getattr(root, "commands", {}).items() if hasattr(cmd, "commands")}


def calls_of(command: str, root: Path = ROOT) -> tuple[str | None, list[str]]:
    """(make target or None, the scripts / mlops verbs / pytest paths the step ends up running)."""
    text = command
    target = None
    if match := MAKE_RE.match(command):
        target = match.group(1)
        text = make_recipe(target, root)
        if not text:
            return target, [f"missing make target {target}"]
    elif match := PY_SCRIPT_RE.match(command):
        text = match.group(1)
    calls = [f"scripts/{name}" for name in SCRIPT_RE.findall(text)]
    groups = verb_groups()
    for verb, sub in MLOPS_RE.findall(text):
        calls.append(f"mlops {verb} {sub}".strip() if verb in groups else f"mlops {verb}")
    for paths in PYTEST_RE.findall(text):
        calls += [f"pytest {p}" for p in paths.split()]
    return target, sorted(set(calls))


FIXTURE_IMPORT_RE = re.compile(r"tests\.fixtures(?:\.(\w+)|\s+import\s+([\w, ]+))")


def _test_files(root: Path) -> dict[str, str]:
    """Each test file's text, followed by the tests/fixtures modules it imports: a fixture that
    starts the docker engine exercises scripts/docker_engine.sh for the tests using it."""
    fixtures = {
        p.stem: p.read_text(errors="replace") for p in (root / "tests/fixtures").glob("*.py")
    }
    texts: dict[str, str] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        text = path.read_text(errors="replace")
        names: set[str] = set()
        for module, imported in FIXTURE_IMPORT_RE.findall(text):
            names.update([module] if module else (n.strip() for n in imported.split(",")))
        texts[str(path.relative_to(root))] = "\n".join(
            [text, *(fixtures[n] for n in sorted(names) if n in fixtures)]
        )
    return texts


def tests_for(call: str, tests: dict[str, str]) -> list[str]:
    """Test files that exercise one call."""
    if call.startswith("scripts/"):
        name = call.removeprefix("scripts/")
        needles = [f"{call}.py", f"{name}.py", f"import {name}", f'"{name}"', f"scripts/{name}"]
        return [path for path, text in tests.items() if any(n in text for n in needles)]
    if call.startswith("mlops "):
        words = call.split()[1:]
        quoted = ", ".join(f'"{w}"' for w in words)
        needles = [f"[{quoted}", f"({quoted}", f"mlops {' '.join(words)}"]
        if len(words) > 1:
            needles.append(quoted)
        return [path for path, text in tests.items() if any(n in text for n in needles)]
    if call.startswith("pytest "):
        prefix = call.removeprefix("pytest ").rstrip("/")
        return [path for path in tests if path == prefix or path.startswith(prefix + "/")]
    return []


def analyse(root: Path = ROOT) -> list[Step]:
    """Every run step with its calls and the tests exercising it."""
    tests = _test_files(root)
    steps = run_steps(root)
    cache: dict[str, tuple[str | None, list[str]]] = {}
    for step in steps:
        if step.command not in cache:
            cache[step.command] = calls_of(step.command, root)
        target, step.calls = cache[step.command]
        found: list[str] = []
        if target and target in EXPLICIT:
            found += [t for t in EXPLICIT[target] if (root / t).exists()]
        elif step.calls:
            per_call = [tests_for(c, tests) for c in step.calls]
            # Every call the step makes must be exercised, not just one of them.
            if all(per_call):
                found += sorted({t for ts in per_call for t in ts})
        step.tests = found
    return steps


def main(argv: list[str] | None = None) -> int:
    """Print the table; with --check exit 1 when a step has no test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a step has no test")
    args = parser.parse_args(argv)
    steps = analyse()
    covered = [s for s in steps if s.tests]
    for step in steps:
        mark = "ok " if step.tests else "-- "
        where = ", ".join(step.tests) if step.tests else f"NO TEST (runs {step.calls or '?'})"
        print(f"{mark}{step.workflow} [{step.job}] `{step.command}` -> {where}")
    print(f"\n{len(covered)} of {len(steps)} run steps exercised by a test")
    return 1 if args.check and len(covered) < len(steps) else 0


if __name__ == "__main__":
    sys.exit(main())
