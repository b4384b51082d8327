"""CI jobs work on GitHub-hosted runners as they are: user `runner` (not root) with passwordless
sudo, a running docker engine and compose v2.

scripts/docker_engine.sh is run here as an unprivileged user (`nobody`, through runuser when the
tests run as root) against stand-ins for `docker`, `sudo` and `apt-get` that record their calls:
a runner's engine and sudo cannot exist on this machine. The stand-in docker answers `info` once
the engine was started (or from the start, as on a runner).
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

from tests.fixtures.workflows import jobs, recipe

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "docker_engine.sh"

DOCKER = """#!/bin/sh
echo "docker $*" >> "$CALLS"
case "$1" in
  info) [ -e "$STATE/engine-up" ] || [ "$ENGINE" = up ] ;;
  compose) [ "$2" = version ] ;;
  *) exit 0 ;;
esac
"""
SUDO = """#!/bin/sh
echo "sudo $*" >> "$CALLS"
[ "$SUDO" = yes ] || exit 1
shift  # -n
case "$*" in
  true) exit 0 ;;
  "cat "*|"rm "*) exec "$@" ;;
  *dockerd*)
    touch "$STATE/engine-up"
    # A real engine keeps running after the script exits: so does this one, when asked to.
    if [ -n "$ENGINE_LINGERS" ]; then
      echo $$ > "$STATE/engine.pid"
      exec sleep "$ENGINE_LINGERS"
    fi ;;
esac
exit 0
"""
RECORD = """#!/bin/sh
echo "{name} $*" >> "$CALLS"
"""


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """A directory `nobody` can use: bin/ with the stand-ins, calls.log, state/."""
    base = Path(tempfile.mkdtemp(prefix="hosted-runner-"))
    (base / "bin").mkdir()
    (base / "state").mkdir()
    (base / "calls.log").write_text("")
    scripts = {"docker": DOCKER, "sudo": SUDO}
    scripts |= {
        n: RECORD.format(name=n) for n in ("apt-get", "dockerd", "docker-compose", "debootstrap")
    }
    for name, text in scripts.items():
        path = base / "bin" / name
        path.write_text(text)
        path.chmod(0o755)
    for path in [base, *base.rglob("*")]:
        path.chmod(0o777 if path.is_dir() or path.name == "calls.log" else 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def run_unprivileged(
    sandbox: Path, timeout: float = 120, **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """docker_engine.sh as a non-root user with the stand-ins first on PATH."""
    path = f"{sandbox / 'bin'}:/usr/bin:/bin"
    variables = {
        "PATH": path,
        "CALLS": str(sandbox / "calls.log"),
        "STATE": str(sandbox / "state"),
        "HOME": str(sandbox),
        "DOCKER_ENGINE_LOG": str(sandbox / "state" / "dockerd.log"),
        "CACHE_DIR": str(sandbox / "state" / "cache"),
        "DOCKER_PIDFILE": str(sandbox / "state" / "docker.pid"),
        "CONTAINERD_PIDFILE": str(sandbox / "state" / "containerd.pid"),
        **env,
    }
    cmd = ["bash", str(SCRIPT)]
    if os.geteuid() == 0:
        assignments = [f"{k}={v}" for k, v in variables.items()]
        cmd = ["runuser", "-u", "nobody", "--", "env", "-i", *assignments, *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    else:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, env=variables
        )
    return done, (sandbox / "calls.log").read_text()


def test_an_engine_that_answers_means_nothing_to_do_and_no_root(sandbox: Path) -> None:
    # Given a runner: docker answers, the job runs as a plain user, GITHUB_ACTIONS is set
    done, calls = run_unprivileged(sandbox, ENGINE="up", SUDO="yes", GITHUB_ACTIONS="true")

    # Then the script succeeds without sudo, apt-get, dockerd or debootstrap
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stderr
    assert calls.splitlines() == ["docker info"]


def test_without_an_engine_it_installs_and_starts_one_through_sudo(sandbox: Path) -> None:
    # Given a non-root user with passwordless sudo, no engine and no compose
    (sandbox / "bin" / "dockerd").unlink()
    (sandbox / "bin" / "docker-compose").unlink()
    done, calls = run_unprivileged(sandbox, ENGINE="down", SUDO="yes", SKIP_BASE_IMAGE="1")

    # Then packages are installed and dockerd started through sudo, and the engine answers
    assert done.returncode == 0, done.stderr
    assert "engine up" in done.stderr
    assert re.search(
        r"^sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install .*docker\.io", calls, re.M
    )
    assert re.search(r"^sudo -n setsid nohup sh -c exec dockerd", calls, re.M)
    # and nothing that needs root ran without it
    assert not re.search(r"^(apt-get|dockerd|debootstrap) ", calls, re.M)


def test_the_started_engine_does_not_hold_the_callers_output_open(sandbox: Path) -> None:
    # Given an engine that keeps running (as dockerd does) after the script started it
    # When the script runs with its output captured (as the pytest fixture runs it)
    try:
        done, _ = run_unprivileged(
            sandbox, ENGINE="down", SUDO="yes", SKIP_BASE_IMAGE="1", ENGINE_LINGERS="60", timeout=20
        )
    finally:
        pid = sandbox / "state" / "engine.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], check=False)
    # Then the call returns when the script exits, not when the engine does
    assert done.returncode == 0, done.stderr
    assert "engine up" in done.stderr


def test_pid_files_left_by_an_engine_killed_with_its_machine_are_removed(sandbox: Path) -> None:
    # Given dockerd's pid file naming a live process that is not dockerd (the pid was reused
    # after a restart) and containerd's naming a process that is gone
    gone = subprocess.Popen(["true"])
    gone.wait()
    docker_pid = sandbox / "state" / "docker.pid"
    containerd_pid = sandbox / "state" / "containerd.pid"
    docker_pid.write_text(str(os.getpid()))
    containerd_pid.write_text(str(gone.pid))
    for path in (docker_pid, containerd_pid):
        path.chmod(0o666)

    done, calls = run_unprivileged(
        sandbox,
        ENGINE="down",
        SUDO="yes",
        SKIP_BASE_IMAGE="1",
        DOCKER_PIDFILE=str(docker_pid),
        CONTAINERD_PIDFILE=str(containerd_pid),
    )

    # Then both go before dockerd starts (which would otherwise wait on a containerd not there)
    assert done.returncode == 0, done.stderr
    assert not docker_pid.exists()
    assert not containerd_pid.exists()
    assert f"removing stale {docker_pid} (pid {os.getpid()} is not dockerd)" in done.stderr
    assert calls.index(f"sudo -n rm -f {containerd_pid}") < calls.index("setsid")


def test_the_pid_file_of_a_running_containerd_is_kept(sandbox: Path) -> None:
    # Given containerd still running (dockerd died alone): dockerd reconnects to it
    shutil.copy("/bin/sleep", sandbox / "bin" / "containerd")
    containerd = subprocess.Popen([str(sandbox / "bin" / "containerd"), "60"])
    pidfile = sandbox / "state" / "containerd.pid"
    pidfile.write_text(str(containerd.pid))
    pidfile.chmod(0o666)
    try:
        done, _ = run_unprivileged(
            sandbox, ENGINE="down", SUDO="yes", SKIP_BASE_IMAGE="1", CONTAINERD_PIDFILE=str(pidfile)
        )
    finally:
        containerd.kill()
        containerd.wait()
    assert done.returncode == 0, done.stderr
    assert pidfile.read_text() == str(containerd.pid)
    assert "stale" not in done.stderr


def test_without_an_engine_or_sudo_it_says_what_it_needs(sandbox: Path) -> None:
    done, calls = run_unprivileged(sandbox, ENGINE="down", SUDO="no")
    assert done.returncode == 1
    assert "needs root: run as root or give this user passwordless sudo" in done.stderr
    assert "setsid" not in calls


def test_the_base_image_is_never_built_on_github_actions(sandbox: Path) -> None:
    # No engine yet, started through sudo: still no debootstrap on a runner (images are pulled)
    done, calls = run_unprivileged(sandbox, ENGINE="down", SUDO="yes", GITHUB_ACTIONS="true")
    assert done.returncode == 0, done.stderr
    assert "debootstrap" not in calls


# --- the workflows ----------------------------------------------------------------------------


@pytest.mark.parametrize(("workflow", "job_id", "job"), jobs())
def test_no_job_needs_root_on_a_hosted_runner(workflow: str, job_id: str, job: dict) -> None:
    if "uses" in job:  # a reusable workflow: its own jobs are checked
        return
    # GitHub-hosted, or the in-VPC CodeBuild runner (test_runners.py says which job runs where)
    assert str(job["runs-on"]).startswith(("ubuntu-", "codebuild-")), f"{workflow}/{job_id}"
    assert "container" not in job, f"{workflow}/{job_id} runs in a container"
    for step in job.get("steps") or []:
        run = str(step.get("run", ""))
        assert "sudo" not in run, f"{workflow}/{job_id}: {run}"
        assert "docker_engine.sh" not in run, f"{workflow}/{job_id}: {run}"
        target = re.match(r"make\s+([\w.-]+)", run)
        if target and "docker_engine.sh" in recipe(target.group(1)):
            # Only through `make docker-engine`, whose script is tested above as a non-root
            # user on a runner (engine answers: nothing to do, no root check).
            assert "bash scripts/docker_engine.sh" in recipe(target.group(1))
            assert "sudo" not in recipe(target.group(1))
