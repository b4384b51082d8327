"""The Makefile: `make help` groups every target by what a user does; an up-to-date .venv is
not synced again."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILES = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
TARGET = re.compile(r"^([a-zA-Z0-9_.-]+):.*## ", re.MULTILINE)


def _make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _public_targets() -> set[str]:
    """Every target with a `## purpose`, read from the makefiles themselves."""
    return {t for f in MAKEFILES for t in TARGET.findall(f.read_text(encoding="utf-8"))}


def _help_groups() -> list[str]:
    found = re.search(r"^HELP_GROUPS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "HELP_GROUPS is not set in the Makefile"
    return found.group(1).split("|")


def _listed() -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in _make("help", "HELP_FORMAT=tsv").splitlines()]
    return [(group, target) for group, target in rows]


def test_every_public_target_is_listed_once_in_a_declared_group() -> None:
    listed = _listed()
    targets = [t for _, t in listed]
    assert sorted(targets) == sorted(_public_targets())
    assert len(targets) == len(set(targets))
    groups = _help_groups()
    ungrouped = [t for g, t in listed if g not in groups]
    assert not ungrouped, (
        f"targets without a declared group: {ungrouped} (put them below a `##@ Group` line "
        f"naming one of {groups})"
    )
    # and benchmarks are where a reader of docs/performance.md looks for them
    assert {t for g, t in listed if t.startswith("bench-")} == {
        t for g, t in listed if g == "Benchmarks"
    }


def test_help_prints_the_groups_in_order_with_every_purpose() -> None:
    text = _make("help")
    headings = [line for line in text.splitlines() if line and not line.startswith(" ")]
    groups = _help_groups()
    assert headings == [g for g in groups if g in headings]
    assert headings[0] == "Start here"
    assert re.search(r"^  install +Create \.venv", text, re.MULTILINE)
    assert "\033[" not in text  # no colour codes when the output is not a terminal


def test_a_target_below_no_group_is_shown_as_other(tmp_path: Path) -> None:
    # The check above can fail: a makefile whose target has no `##@` line above it
    planted = tmp_path / "planted.mk"
    planted.write_text("##@ Test\nunit: ## a grouped one\n\n", encoding="utf-8")
    (tmp_path / "late.mk").write_text("orphan: ## a new target\n", encoding="utf-8")
    done = subprocess.run(
        ["awk", "-v", "order=Test", "-v", "format=tsv", "-f", str(ROOT / "mk/help.awk"),
         str(planted), str(tmp_path / "late.mk")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    # the group does not carry over into the next file
    assert done.stdout.splitlines() == ["Test\tunit", "Other\torphan"]


def _install_dry_run(venv: Path) -> str:
    return _make("-n", "install", f"VENV={venv}", "EXTRAS=dev")


def test_an_up_to_date_venv_is_not_synced_again(tmp_path: Path) -> None:
    # Given an environment whose stamp is newer than uv.lock and pyproject.toml
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "uv").write_text("")
    stamp = venv / ".synced-dev"
    stamp.write_text("")
    newest = max((ROOT / n).stat().st_mtime for n in ("uv.lock", "pyproject.toml"))
    os.utime(stamp, (newest + 60, newest + 60))
    # Then `make install` (what every target depends on) does nothing
    assert "uv sync" not in _install_dry_run(venv)
    # When the lock is newer than the stamp, it syncs, then stamps
    os.utime(stamp, (newest - 60, newest - 60))
    plan = _install_dry_run(venv)
    assert "uv sync --frozen" in plan
    assert f"touch {stamp}" in plan
