"""Step `codeowners`: the teams of config/platform.yaml, and their placeholders in
.github/CODEOWNERS replaced by the teams given (a local edit to commit in a pull request)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ml.errors import ConfigError
from ml.platform.bootstrap.recorder import Call, Recorder
from ml.platform.config import PlatformConfig

CODEOWNERS = Path(".github/CODEOWNERS")


@dataclass(frozen=True)
class TeamRef:
    """A reviewer: an organisation team (`org/slug`) or a user (`user:login`)."""

    key: str
    kind: Literal["Team", "User"]
    org: str
    slug: str

    @property
    def handle(self) -> str:
        """How CODEOWNERS names it."""
        return f"@{self.org}/{self.slug}" if self.kind == "Team" else f"@{self.slug}"

    @property
    def lookup(self) -> str:
        """The REST path that gives its id."""
        return (
            f"/orgs/{self.org}/teams/{self.slug}" if self.kind == "Team" else f"/users/{self.slug}"
        )


def parse_teams(config: PlatformConfig, repo: str, given: Iterable[str]) -> dict[str, TeamRef]:
    """`--team KEY=ORG/SLUG` or `KEY=user:LOGIN`; every team defaults to `<repo owner>/<key>`."""
    owner = repo.split("/")[0]
    chosen = {key: f"{owner}/{key}" for key in config.teams}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in config.teams or not value:
            raise ConfigError(
                f"--team {item!r}: use KEY=ORG/SLUG or KEY=user:LOGIN with KEY one of "
                f"{', '.join(config.teams)}"
            )
        chosen[key] = value
    refs: dict[str, TeamRef] = {}
    for key, value in chosen.items():
        if value.startswith("user:"):
            refs[key] = TeamRef(key, "User", "", value.removeprefix("user:"))
        else:
            org, _, slug = value.partition("/")
            if not org or not slug:
                raise ConfigError(f"--team {key}={value}: expected ORG/SLUG")
            refs[key] = TeamRef(key, "Team", org, slug)
    return refs


def codeowners(
    config: PlatformConfig,
    teams: Mapping[str, TeamRef],
    recorder: Recorder,
    path: Path = CODEOWNERS,
) -> None:
    """Replace each team placeholder in CODEOWNERS by the team given (a local edit to commit)."""
    text = path.read_text()
    new = text
    for key, team in config.teams.items():
        if team.placeholder in new:
            new = new.replace(team.placeholder, teams[key].handle)
            recorder.record(
                Call("file", "edit", str(path), note=f"{team.placeholder} -> {teams[key].handle}")
            )
    if new == text:
        recorder.log(f"{path}: no placeholder left, nothing to replace")
        return
    if not recorder.dry_run:
        path.write_text(new)
        recorder.log(f"{path} rewritten: commit it through a pull request")
