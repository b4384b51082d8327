"""`make scan` (the CI images job's Trivy step) fails on a planted finding and passes a clean tree.

The recipe runs for real against temporary trees (SCAN_DIR), offline, with the project's trivy.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Split so this file itself holds no key-shaped string for the repository scan to flag.
FAKE_ACCESS_KEY_ID = "AK" + "IA" + "QYLPMN5HFIQR7XYZ"
NON_ROOT_DOCKERFILE = "FROM debian:12-slim\nRUN useradd --uid 10001 app\nUSER 10001\n"


def scan(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "scan", f"SCAN_DIR={tree}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(NON_ROOT_DOCKERFILE)

    done = scan(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr


def test_an_image_running_as_root_fails(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:12-slim\nRUN echo built\n")

    done = scan(tmp_path)

    assert done.returncode != 0
    assert "DS-0002" in done.stdout


def test_a_committed_access_key_fails(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(NON_ROOT_DOCKERFILE)
    (tmp_path / "deploy.env").write_text(f"AWS_ACCESS_KEY_ID={FAKE_ACCESS_KEY_ID}\n")

    done = scan(tmp_path)

    assert done.returncode != 0
    assert "aws-access-key-id" in done.stdout
    assert FAKE_ACCESS_KEY_ID not in done.stdout + done.stderr  # trivy masks what it found
