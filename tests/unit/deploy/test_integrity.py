"""Release records: the SHA-256 digest chain, the scan production requires, "superseded".

The registry is the in-memory stand-in (tests/fixtures/memory_registry.py); the same rules run
against a real MLflow server in tests/integration/test_deploy_transaction.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ml.deploy import release as releases
from ml.deploy import scan
from ml.deploy.records import DeployRecord, Previous, deploy_tag
from ml.errors import ReleaseError, SupersededError
from ml.registry import VersionInfo
from tests.fixtures.memory_registry import MemoryRegistry, model, version

TRIVY = Path(__file__).resolve().parents[2] / "fixtures" / "trivy"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:"
M = "credit-risk"


class Registry(MemoryRegistry):
    def get_version(self, name: str, number: int) -> VersionInfo | None:
        state = self.model_state(name)
        return state.versions.get(number) if state else None


def _scan(report: str = "report_clean.json", images: list[str] | None = None) -> Any:
    doc = json.loads((TRIVY / report).read_text())
    version = json.loads((TRIVY / "version.json").read_text())
    return scan.record({i: doc for i in images or [IMAGE + "a" * 64]}, version, [])


def _world(n: int = 3) -> tuple[Registry, list[releases.Release]]:
    reg = Registry(model(M, [version(M, 1), version(M, 2)]))
    made = []
    for i in range(n):
        rel = releases.build(f"r{i}", str(i) * 40, IMAGE + "a" * 64, None, {M: 1}, _scan())
        made.append(releases.create(reg, M, rel)[0])
    return reg, made


def test_releases_are_sealed_and_chained() -> None:
    reg, made = _world()
    assert [r.prev for r in made] == [None, made[0].digest, made[1].digest]
    assert all(r.digest and r.digest == r.compute_digest() for r in made)
    assert releases.verify_chain(releases.list_all(reg, M)) == []
    releases.require_intact(reg, M, made[2], made[2].digest)


@pytest.mark.parametrize(
    ("edit", "flagged"),
    [
        (lambda d: d.update(serve_image=IMAGE + "b" * 64), "r1: the record does not hash"),
        (lambda d: d.update(models={M: 2}), "r1: the record does not hash"),
        (lambda d: d["scan"].update(time="2030-01-01T00:00:00Z"), "r1: the record does not"),
        (lambda d: d.update(prev="sha256:" + "9" * 64), "r1: its predecessor"),
    ],
)
def test_a_rewritten_record_is_flagged_and_refused(edit: Any, flagged: str) -> None:
    # Given three sealed releases, when someone with EDIT on the model rewrites r1's tag
    reg, made = _world()
    doc = json.loads(reg.model_tags(M)["release.r1"])
    edit(doc)
    reg.set_model_tag(M, "release.r1", json.dumps(doc))
    # Then the chain check names it, and production refuses every release until a human looks
    problems = releases.verify_chain(releases.list_all(reg, M))
    assert any(flagged in p for p in problems), problems
    with pytest.raises(ReleaseError, match="failed the integrity check"):
        releases.require_intact(reg, M, made[2], made[2].digest)


def test_a_rewritten_digest_breaks_the_next_link_and_a_deleted_release_too() -> None:
    reg, made = _world()
    doc = json.loads(reg.model_tags(M)["release.r1"])
    doc["models"] = {M: 2}
    forged = releases.Release.model_validate(doc)
    doc["digest"] = forged.compute_digest()  # recomputed: r1 hashes again, r2's link breaks
    reg.set_model_tag(M, "release.r1", json.dumps(doc))
    assert releases.verify_chain(releases.list_all(reg, M)) == [
        f"release r2: its predecessor {made[1].digest[:19]}... is missing or was rewritten"
    ]
    # And the last release is anchored by the digest its run handed on (a job output)
    doc = json.loads(reg.model_tags(M)["release.r2"])
    doc["models"] = {M: 2}
    doc["digest"] = releases.Release.model_validate(doc).compute_digest()
    reg.set_model_tag(M, "release.r2", json.dumps(doc))
    with pytest.raises(ReleaseError, match="the run that created it recorded"):
        releases.require_intact(reg, M, releases.get(reg, M, "r2"), made[2].digest)


def test_an_unsealed_record_after_sealed_ones_is_flagged() -> None:
    reg, _ = _world(1)
    raw = releases.build("forged", "f" * 40, IMAGE + "a" * 64, None, {M: 2}, _scan())
    later = raw.model_copy(update={"created": "2999-01-01T00:00:00Z"})
    reg.set_model_tag(M, "release.forged", later.to_json())
    problems = releases.verify_chain(releases.list_all(reg, M))
    assert problems == [
        "release forged has no digest but was created after sealed releases (not written by "
        "`mlops release create`)"
    ]
    with pytest.raises(ReleaseError, match="is not sealed"):
        releases.require_intact(reg, M, releases.get(reg, M, "forged"), None)


def test_production_requires_a_passing_recent_scan_of_its_digests() -> None:
    rel = releases.build("r", "f" * 40, IMAGE + "a" * 64, None, {M: 1})
    with pytest.raises(ReleaseError, match="has no scan record"):
        releases.require_scan(rel, 168)
    high = rel.model_copy(update={"scan": _scan("report_high.json")})
    with pytest.raises(ReleaseError, match=r"CVE-2024-0003 urllib3@2.2.1 \(HIGH, fixed in 2.2.2"):
        releases.require_scan(high, 168)
    other = rel.model_copy(update={"scan": _scan(images=[IMAGE + "c" * 64])})
    with pytest.raises(ReleaseError, match="does not cover"):
        releases.require_scan(other, 168)
    ok = rel.model_copy(update={"scan": _scan()})
    releases.require_scan(ok, 168)
    later = datetime.now(UTC) + timedelta(hours=169)
    with pytest.raises(ReleaseError, match="DEPLOY_SCAN_MAX_AGE_HOURS=168"):
        releases.require_scan(ok, 168, now=later)
    # A rescan renews it
    fresh = _scan().model_copy(update={"time": later.isoformat().replace("+00:00", "Z")})
    releases.require_scan(ok.model_copy(update={"rescans": [fresh]}), 168, now=later)


def test_an_older_release_is_superseded_by_a_newer_one_production_runs() -> None:
    reg, made = _world(2)
    history = ["1" * 40, "0" * 40]  # r1's commit is newer
    record = DeployRecord(release="r1", phase="done", previous=Previous({}, "td:1"), time="t")
    reg.set_model_tag(M, deploy_tag("production"), record.to_json())
    with pytest.raises(SupersededError, match="production already runs release r1"):
        releases.refuse_superseded(reg, M, "production", made[0], lambda: history)
    releases.refuse_superseded(reg, M, "production", made[1], lambda: history)  # itself
    assert SupersededError.exit_code == 17
    # Not superseded by a run that did not finish, nor by a commit the history does not know
    reg.set_model_tag(M, deploy_tag("production"), DeployRecord(
        **{**record.__dict__, "phase": "reverted"}).to_json())  # fmt: skip
    releases.refuse_superseded(reg, M, "production", made[0], lambda: history)
    reg.set_model_tag(M, deploy_tag("production"), record.to_json())
    releases.refuse_superseded(reg, M, "production", made[0], lambda: ["0" * 40])
