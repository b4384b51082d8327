"""Released digests never expire: the ECR lifecycle policy terraform renders (modules/ecr),
evaluated with ECR's documented rules against a simulated repository of 300 CD pushes, keeps
every digest a release tagged (`mlops release create` adds `release-<id>`).

ECR's evaluation rules applied here (docs: "Lifecycle policy evaluation rules"): rules run in
rulePriority order; an image matching the tagging requirements of a higher-priority rule cannot
be expired by a lower-priority rule; `tagPatternList` selects an image when one of its tags
matches a pattern (`*` any run of characters); `imageCountMoreThan` keeps the newest N selected
images by push time; `sinceImagePushed` expires those pushed more than N days ago; `any` selects
every image. Only a real account runs ECR's own evaluator (it acts within 24 h).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ml.deploy.ecr import release_image_tag
from tests.fixtures.terraform import plugin_dir, terraform_binary

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The lifecycle policy as terraform renders it (`terraform console` over modules/ecr)."""
    work = tmp_path_factory.mktemp("ecr") / "ecr"
    shutil.copytree(ROOT / "infra" / "terraform" / "modules" / "ecr", work)
    tf, plugins = terraform_binary(), plugin_dir()
    init = [tf, "init", "-backend=false", "-input=false", "-no-color"]
    if plugins:
        init.append(f"-plugin-dir={plugins}")
    done = subprocess.run(init, cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(
        [tf, "console", "-var", "name=credit-risk/serve"], cwd=work, capture_output=True,
        text=True, timeout=300, input="jsonencode(local.lifecycle_policy)\n",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return dict(json.loads(json.loads(shown.stdout.strip())))


@dataclass
class Image:
    digest: str
    pushed_day: int
    tags: set[str] = field(default_factory=set)


def _selects(selection: dict[str, Any], image: Image) -> bool:
    status = selection["tagStatus"]
    if status == "untagged":
        return not image.tags
    if status == "any":
        return True
    patterns = selection.get("tagPatternList") or [
        f"{p}*" for p in selection.get("tagPrefixList") or []
    ]
    return bool(image.tags) and any(
        fnmatch.fnmatchcase(tag, pattern) for tag in image.tags for pattern in patterns
    )


def evaluate(policy: dict[str, Any], images: list[Image], today: int) -> set[str]:
    """Digests ECR's lifecycle expires (see the module docstring)."""
    expired: set[str] = set()
    claimed: set[str] = set()  # matched by a higher-priority rule's tagging requirements
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        chosen = [i for i in images if i.digest not in claimed and _selects(sel, i)]
        chosen.sort(key=lambda i: i.pushed_day, reverse=True)
        if sel["countType"] == "imageCountMoreThan":
            doomed = chosen[sel["countNumber"] :]
        else:
            doomed = [i for i in chosen if today - i.pushed_day > sel["countNumber"]]
        expired |= {i.digest for i in doomed}
        claimed |= {i.digest for i in chosen}
    return expired


def test_300_pushes_keep_every_release_digest(policy: dict[str, Any]) -> None:
    # Given 300 merges pushed over 300 days (tag: the git SHA), every 7th one a release CD
    # tagged as `release create` does, and every 11th push a failed one left untagged
    images: list[Image] = []
    released: set[str] = set()
    for n in range(300):
        image = Image(f"sha256:{n:064x}", pushed_day=n, tags={f"{n:040x}"})
        if n % 11 == 5:
            image.tags.clear()
        elif n % 7 == 0:
            image.tags.add(release_image_tag(f"{n:040x}"[:12]))
            released.add(image.digest)
        images.append(image)
    # When the rendered lifecycle policy runs on day 300
    expired = evaluate(policy, images, today=300)
    # Then no release digest expires, and the policy still bounds the rest
    assert not expired & released
    kept = [i for i in images if i.digest not in expired and i.digest not in released]
    assert len(released) == 39  # 43 multiples of 7, less 4 failed pushes
    assert 0 < len(kept) <= 100
    assert all(i.tags for i in images if i.digest not in expired and 300 - i.pushed_day > 7)


def test_without_the_release_tag_old_releases_would_expire(policy: dict[str, Any]) -> None:
    # The evaluation can fail: a release whose digest lacks the tag is expired after 100 pushes.
    images = [Image(f"sha256:{n:064x}", n, {f"{n:040x}"}) for n in range(300)]
    assert images[0].digest in evaluate(policy, images, today=300)
