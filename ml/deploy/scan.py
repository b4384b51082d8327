"""Scan what ships: `trivy image` over the digests CD pushed, judged as `make scan-images`
judges the images CI built (HIGH/CRITICAL with a fix available fail; `.trivyignore.yaml`
accepts a finding until its `expired_at`).

The same ignore file is passed to trivy (`--ignorefile`) and applied again here when a report
is judged, so a recorded report (trivy's JSON, e.g. from a machine that reaches the
vulnerability DB) is judged by exactly the rules of a live scan. The result is a
`ScanRecord` (tool version, DB date, blocking findings per digest) that `mlops release create`
stores in the release and production requires (`ml.deploy.release.require_scan`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ml.deploy.release import ScanRecord
from ml.errors import ConfigError, ImageError
from ml.promotions.records import now_iso

BLOCKING = ("HIGH", "CRITICAL")


@dataclass(frozen=True)
class Accepted:
    """One `.trivyignore.yaml` vulnerability entry."""

    id: str
    expired_at: date | None
    purls: tuple[str, ...] = ()

    def matches(self, vuln: dict[str, Any], today: date) -> bool:
        """Whether this entry accepts `vuln` today (an expired entry accepts nothing)."""
        if vuln.get("VulnerabilityID") != self.id:
            return False
        if self.expired_at is not None and today > self.expired_at:
            return False
        purl = str((vuln.get("PkgIdentifier") or {}).get("PURL") or "")
        return not self.purls or purl in self.purls


def load_accepted(path: Path) -> list[Accepted]:
    """The accepted vulnerabilities of a trivy ignore file (YAML format)."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the trivy ignore file ({exc})") from exc
    out = []
    for entry in doc.get("vulnerabilities") or []:
        expiry = entry.get("expired_at")
        if isinstance(expiry, str):
            expiry = date.fromisoformat(expiry)
        out.append(Accepted(str(entry["id"]), expiry, tuple(entry.get("purls") or ())))
    return out


def blocking_findings(
    report: dict[str, Any], accepted: list[Accepted], today: date | None = None
) -> list[str]:
    """The findings of one trivy JSON report that fail a release: HIGH/CRITICAL, a fixed
    version exists, not accepted. One line each: `ID pkg@installed (SEVERITY, fixed in X)`."""
    today = today or date.today()
    out = []
    for result in report.get("Results") or []:
        for vuln in result.get("Vulnerabilities") or []:
            if vuln.get("Severity") not in BLOCKING or not vuln.get("FixedVersion"):
                continue
            if any(a.matches(vuln, today) for a in accepted):
                continue
            out.append(
                f"{vuln.get('VulnerabilityID')} {vuln.get('PkgName')}@"
                f"{vuln.get('InstalledVersion')} ({vuln.get('Severity')}, fixed in "
                f"{vuln.get('FixedVersion')})"
            )
    return sorted(set(out))


def record(
    reports: dict[str, dict[str, Any]], version: dict[str, Any], accepted: list[Accepted]
) -> ScanRecord:
    """The scan record of several reports (image reference → trivy JSON) and the output of
    `trivy --version --format json` (tool version, vulnerability DB date)."""
    db = version.get("VulnerabilityDB") or {}
    return ScanRecord(
        tool="trivy",
        tool_version=str(version.get("Version") or "unknown"),
        db_updated_at=db.get("UpdatedAt"),
        time=now_iso(),
        images={image: blocking_findings(rep, accepted) for image, rep in reports.items()},
    )


def _trivy(trivy: str, *args: str, timeout: float = 900) -> str:
    try:
        done = subprocess.run(
            [trivy, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"trivy {' '.join(args[:2])}: {exc} (hint: make install)") from exc
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-400:]
        raise ImageError(f"trivy {' '.join(args[:2])} failed (exit {done.returncode}): {tail}")
    return done.stdout


def scan(images: list[str], trivy: str, ignorefile: Path) -> ScanRecord:
    """Scan `images` (references by digest, pulled from their registry) with trivy.

    The vulnerability DB must be reachable: a scan without it would record a pass that
    scanned nothing, so its failure is an error, never a pass.
    """
    accepted = load_accepted(ignorefile)
    _trivy(trivy, "image", "--download-db-only", "--quiet", "--skip-version-check")
    reports = {}
    for image in images:
        out = _trivy(
            trivy, "image", "--format", "json", "--quiet", "--skip-version-check",
            "--skip-db-update", "--image-src", "remote", "--scanners", "vuln",
            "--severity", ",".join(BLOCKING), "--ignore-unfixed", "--ignorefile",
            str(ignorefile), image,
        )  # fmt: skip
        reports[image] = json.loads(out)
    version = json.loads(_trivy(trivy, "--version", "--format", "json"))
    return record(reports, version, accepted)
