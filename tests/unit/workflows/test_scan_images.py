"""`make scan-images` (scripts/scan_images.sh), its ignore file, and the CI image cache
(scripts/ci_image_cache.sh).

Tiny images are made with `docker import` from a tarball (nothing is pulled), one clean and one
with a planted access key, and scanned by the project's trivy for real. The vulnerability DB is
unreachable here, which is the case the script must report loudly.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import docker_stack

ROOT = Path(__file__).resolve().parents[3]
docker_client = docker_stack.docker_client  # starts the engine, or fails saying why
SCRIPT = ROOT / "scripts" / "scan_images.sh"
# Split so this file holds no key-shaped string for the repository's own secret scan.
FAKE_ACCESS_KEY_ID = "AK" + "IA" + "QYLPMN5HFIQR7XYZ"
ENTRY_KEYS = {"id", "paths", "purls", "statement", "expired_at"}


# --- the ignore file --------------------------------------------------------------------------


def ignore_problems(doc: Any) -> list[str]:
    """Why an ignore file is not acceptable: every entry needs an id, a statement, an expiry."""
    if not isinstance(doc, dict):
        return ["not a mapping of vulnerabilities/misconfigurations/secrets/licenses"]
    problems = []
    for section, entries in doc.items():
        if section not in {"vulnerabilities", "misconfigurations", "secrets", "licenses"}:
            problems.append(f"unknown section {section}")
            continue
        for entry in entries or []:
            ident = entry.get("id", "?")
            if not entry.get("id"):
                problems.append(f"{section}: an entry without id")
            if not str(entry.get("statement", "")).strip():
                problems.append(f"{section} {ident}: no statement (why it is accepted)")
            if not isinstance(entry.get("expired_at"), dt.date):
                problems.append(f"{section} {ident}: no expired_at date (YYYY-MM-DD)")
            if set(entry) - ENTRY_KEYS:
                problems.append(
                    f"{section} {ident}: unknown keys {sorted(set(entry) - ENTRY_KEYS)}"
                )
    return problems


def test_every_accepted_finding_has_a_reason_and_an_expiry() -> None:
    doc = yaml.safe_load((ROOT / ".trivyignore.yaml").read_text())
    assert ignore_problems(doc) == []


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"id": "CVE-2025-1", "expired_at": dt.date(2026, 1, 1)}, "no statement"),
        ({"id": "CVE-2025-1", "statement": "  "}, "no statement"),
        ({"id": "CVE-2025-1", "statement": "not reachable"}, "no expired_at"),
        ({"id": "CVE-2025-1", "statement": "x", "expired_at": "soon"}, "no expired_at"),
        ({"statement": "x", "expired_at": dt.date(2026, 1, 1)}, "without id"),
        (
            {"id": "CVE-2025-1", "statement": "x", "expired_at": dt.date(2026, 1, 1), "why": 1},
            "unknown keys",
        ),
    ],
)
def test_the_check_refuses_an_entry_without_reason_or_expiry(entry: dict, problem: str) -> None:
    problems = ignore_problems({"vulnerabilities": [entry]})
    assert any(problem in p for p in problems), problems


# --- images made here -------------------------------------------------------------------------


def _docker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=300)


def _import(files: dict[str, str]) -> str:
    """A one-layer image with `files`, running as uid 10001 (imported, not pulled)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tag = f"plat-scan-test-{uuid.uuid4().hex[:8]}:t"
    done = _docker("import", "--change", "USER 10001", "-", tag, stdin=buf.getvalue())
    assert done.returncode == 0, done.stderr.decode()
    return tag


@pytest.fixture(scope="module")
def images(docker_client: Any) -> Iterator[dict[str, str]]:
    made = {
        "clean": _import({"app/README": "nothing to see\n"}),
        "leaky": _import({"app/deploy.env": f"AWS_ACCESS_KEY_ID={FAKE_ACCESS_KEY_ID}\n"}),
    }
    yield made
    _docker("rmi", "-f", *made.values())


def scan(*images: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"CI", "GITHUB_ACTIONS"}}
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**base, "SCAN_IMAGES": " ".join(images), "NO_COLOR": "1", **env},
    )


def test_offline_it_says_so_loudly_and_still_passes_a_clean_image(images: dict[str, str]) -> None:
    done = scan(images["clean"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOTICE: the Trivy vulnerability DB is NOT reachable" in done.stderr
    assert "vulnerabilities NOT scanned (offline)" in done.stderr


def test_offline_in_github_actions_it_fails(images: dict[str, str]) -> None:
    done = scan(images["clean"], CI="true", GITHUB_ACTIONS="true")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "::error title=trivy::vulnerability DB unreachable" in done.stdout


def test_a_secret_in_an_image_fails_even_offline(images: dict[str, str]) -> None:
    done = scan(images["clean"], images["leaky"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "aws-access-key-id" in done.stdout
    assert f"FAILED: findings (HIGH/CRITICAL) in: {images['leaky']}" in done.stderr
    assert FAKE_ACCESS_KEY_ID not in done.stdout + done.stderr  # trivy masks it


def test_an_accepted_finding_with_a_future_expiry_passes(
    images: dict[str, str], tmp_path: Path
) -> None:
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text(
        "secrets:\n  - id: aws-access-key-id\n    statement: planted by this test\n"
        f"    expired_at: {dt.date.today() + dt.timedelta(days=30)}\n"
    )
    assert scan(images["leaky"], TRIVY_IGNOREFILE=str(ignore)).returncode == 0
    # An expired acceptance no longer hides the finding.
    ignore.write_text(
        ignore.read_text().replace(str(dt.date.today() + dt.timedelta(days=30)), "2020-01-01")
    )
    assert scan(images["leaky"], TRIVY_IGNOREFILE=str(ignore)).returncode == 1


def test_a_missing_image_says_to_build_it() -> None:
    done = scan("plat-scan-test-absent:none")
    assert done.returncode == 2
    assert "not found: build it first (make images)" in done.stderr


def test_the_ci_image_cache_round_trips(images: dict[str, str], tmp_path: Path) -> None:
    script = ROOT / "scripts" / "ci_image_cache.sh"
    cache = tmp_path / "cache"
    image = images["clean"]
    saved = subprocess.run(
        ["bash", str(script), "save", str(cache), image], capture_output=True, text=True
    )
    assert saved.returncode == 0, saved.stderr
    image_id = _docker("image", "inspect", "-f", "{{.Id}}", image).stdout
    assert _docker("rmi", image).returncode == 0

    loaded = subprocess.run(
        ["bash", str(script), "load", str(cache)], capture_output=True, text=True
    )

    assert loaded.returncode == 0, loaded.stderr
    assert _docker("image", "inspect", "-f", "{{.Id}}", image).stdout == image_id
    empty = subprocess.run(
        ["bash", str(script), "load", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert empty.returncode == 0
    assert "no cached images" in empty.stdout
