"""Image references: `<registry>/<repository>` with a tag or a digest (`@sha256:...`), what a
release names and a task definition runs."""

from __future__ import annotations

from dataclasses import dataclass

from ml.adapters.registry_v2 import DIGEST as _DIGEST
from ml.errors import ConfigError


@dataclass(frozen=True)
class ImageRef:
    """`<registry>/<repository>` plus a tag or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Split `123.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve@sha256:...` (or `:tag`).

        Raises:
            ConfigError: no registry host, or neither a tag nor a digest.
        """
        name, at, digest = ref.partition("@")
        registry, slash, rest = name.partition("/")
        tag = None
        if not at:
            rest, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
            tag = tag or None
        if not slash or not rest or (at and not _DIGEST.match(digest)) or (not at and not tag):
            raise ConfigError(
                f"bad image reference {ref!r} (hint: <registry>/<repository>@sha256:<64 hex> or "
                "<registry>/<repository>:<tag>)"
            )
        return cls(registry, rest, tag, digest or None)

    @property
    def name(self) -> str:
        """`<registry>/<repository>`."""
        return f"{self.registry}/{self.repository}"

    def by_digest(self, digest: str) -> str:
        """`<registry>/<repository>@<digest>`: what a release and a task definition name."""
        return f"{self.name}@{digest}"


def repository_ref(url: str, what: str) -> ImageRef:
    """`ECR_*_REPOSITORY_URL` (no tag) as an ImageRef; `ConfigError` if it is not one."""
    registry, slash, repository = url.partition("/")
    if not slash or not repository or "@" in url or ":" in repository:
        raise ConfigError(
            f"{what}={url!r} is not a repository URL (hint: the terraform output, e.g. "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/credit-risk-serve)"
        )
    return ImageRef(registry, repository)
