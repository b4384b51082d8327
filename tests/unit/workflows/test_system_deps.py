"""`make test` on a fresh machine installs what the tests start before it needs it.

`make system-deps` (the first prerequisite of `make test`) runs scripts/system_deps.sh. The
packages on this machine cannot be uninstalled, so the target runs with a PATH that lacks
promtool and the other tools, against stand-ins for `apt-get` and `sudo` that record their calls;
as an unprivileged user (`nobody`, through runuser when the tests run as root), like a
GitHub-hosted runner's `runner` or a developer's laptop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SUDO = """#!/bin/sh
echo "sudo $*" >> "$CALLS"
[ "$SUDO" = yes ] || exit 1
shift  # -n
exec "$@"
"""
APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$CALLS"
"""
# The tools make and the script use, linked one by one: a PATH of these has no promtool,
# amtool, dockerd... whatever this machine has installed.
TOOLS = (
    "bash",
    "sh",
    "env",
    "id",
    "ls",
    "true",
    "make",
    "grep",
    "sort",
    "awk",
    "cat",
    "cut",
    "cksum",
)


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """bin/ with the stand-ins and the basic tools only, and calls.log; usable by `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="system-deps-"))
    (base / "bin").mkdir()
    (base / "calls.log").write_text("")
    for name, text in {"sudo": SUDO, "apt-get": APT_GET}.items():
        (base / "bin" / name).write_text(text)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run the target"
        (base / "bin" / tool).symlink_to(found)
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() or path.name == "calls.log" else 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def make_system_deps(sandbox: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """`make system-deps` as a non-root user with only the sandbox's bin/ on PATH."""
    variables = {
        "PATH": str(sandbox / "bin"),
        "CALLS": str(sandbox / "calls.log"),
        "HOME": str(sandbox),
        **env,
    }
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "system-deps"]
    if os.geteuid() == 0:
        assignments = [f"{k}={v}" for k, v in variables.items()]
        cmd = ["runuser", "-u", "nobody", "--", "env", "-i", *assignments, *cmd]
        variables = {"PATH": os.environ["PATH"]}
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env=variables
    )
    return done, (sandbox / "calls.log").read_text()


def test_make_test_installs_the_system_packages_first() -> None:
    # The README's `make test` on a fresh machine: system-deps runs before any check
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "system_deps.sh" in line)
    checks = [i for i, line in enumerate(lines) if re.search(r"promtool|pytest|ruff", line)]
    assert checks, done.stdout
    assert first < min(checks)


def test_without_promtool_the_target_installs_it_through_sudo(sandbox: Path) -> None:
    # Given a user with passwordless sudo on a machine without promtool (nor the rest)
    done, calls = make_system_deps(sandbox, SUDO="yes")

    # Then the target succeeds and apt-get installed prometheus (promtool) through sudo
    assert done.returncode == 0, done.stderr
    via_sudo = "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get"
    install = re.search(rf"^{via_sudo} install (.*)$", calls, re.M)
    assert install, calls
    packages = install.group(1).split()
    for package in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway", "docker.io"):
        assert package in packages, packages
    # and apt-get ran only through sudo (the stand-in sudo runs the stand-in apt-get)
    apt_calls = re.findall(r"^apt-get (\S+)", calls, re.M)
    assert apt_calls == ["update", "install"], calls


def test_without_root_or_sudo_it_names_the_packages_and_changes_nothing(sandbox: Path) -> None:
    done, calls = make_system_deps(sandbox, SUDO="no")
    assert done.returncode != 0
    assert "missing system packages:" in done.stderr
    assert "prometheus" in done.stderr
    assert "passwordless sudo" in done.stderr
    assert "apt-get" not in calls.replace("sudo -n true", "")
