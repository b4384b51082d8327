""".github/CODEOWNERS: every path that changes what runs in production has an owner.

Matching follows GitHub's rules (gitignore-style patterns; the last matching line wins), so a
general line placed after a specific one would be caught here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml.platform.config import load_platform

ROOT = Path(__file__).resolve().parents[3]
CONFIG = load_platform(ROOT / "config" / "platform.yaml")
PLACEHOLDERS = {t.placeholder: key for key, t in CONFIG.teams.items()}


def rules(text: str) -> list[tuple[re.Pattern[str], list[str]]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *owners = line.split()
        out.append((_compile(pattern), owners))
    return out


def _compile(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    regex = ""
    i = 0
    while i < len(body):
        if body.startswith("**", i):
            regex += ".*"
            i += 2
        elif body[i] == "*":
            regex += "[^/]*"
            i += 1
        else:
            regex += re.escape(body[i])
            i += 1
    prefix = "^" if anchored else "^(?:.*/)?"
    # A pattern matches the path itself or anything under it (a directory).
    return re.compile(f"{prefix}{regex}(?:/.*)?$")


def owners_of(path: str) -> list[str]:
    found: list[str] = []
    for regex, owners in rules((ROOT / ".github" / "CODEOWNERS").read_text()):
        if regex.match(path):
            found = owners
    return found


@pytest.mark.parametrize(
    "path",
    [
        "Makefile",
        "mk/docker.mk",
        "scripts/deploy.py",
        "ml/promotions/apply.py",
        "ml/deploy/rollout.py",
        "config/gates.yaml",
        "config/platform.yaml",
        "config/monitoring.yaml",
        "infra/terraform/stack/main.tf",
        ".github/workflows/ci.yml",
        ".github/CODEOWNERS",
        "promotions.yaml",
        "Dockerfile",
    ],
)
def test_the_path_has_a_team_that_bootstrap_fills_in(path: str) -> None:
    owners = owners_of(path)
    assert owners, f"{path} has no code owner"
    assert set(owners) <= set(PLACEHOLDERS), f"{path}: {owners} are not teams of platform.yaml"


@pytest.mark.parametrize("path", ["promotions.yaml", "config/gates.yaml"])
def test_model_approvers_alone_own_what_reaches_production(path: str) -> None:
    assert [PLACEHOLDERS[o] for o in owners_of(path)] == ["model-approvers"]


def test_the_pipeline_is_owned_by_the_platform_team() -> None:
    for path in (".github/workflows/cd.yml", "infra/terraform/platform/main.tf", "mk/terraform.mk"):
        assert [PLACEHOLDERS[o] for o in owners_of(path)] == ["platform"], path


def test_the_matcher_follows_last_match_wins() -> None:
    text = "*  @a/x\n/config/  @a/y\n/config/gates.yaml @a/z\n"
    found = [o for r, o in rules(text) if r.match("config/gates.yaml")]
    assert found[-1] == ["@a/z"]
    assert [o for r, o in rules(text) if r.match("configure.py")] == [["@a/x"]]
