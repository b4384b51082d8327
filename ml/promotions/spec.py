"""`promotions.yaml` contract v1: strict, typed, every error with file, line and a fix hint.

The file is read with ruamel.yaml's round-trip loader: it refuses duplicate keys and keeps the
line of every key, so a pydantic error on `models.credit-risk.version` can point at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ml.errors import SpecError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

_HINTS = {
    "extra_forbidden": "allowed keys: models.<name>.version, .note, .rollback",
    "int_type": "write the version as a bare integer, e.g. `version: 4` (no quotes, no decimals)",
    "greater_than": "versions start at 1; use a version number shown by `mlops promote plan`",
    "missing": "every model needs `version: <int>`",
    "string_type": 'quote the note: note: "why this version"',
    "bool_type": "write `rollback: true` or remove the key",
    "dict_type": "expected a mapping: `models:` then `  <name>:` then `    version: N`",
}


class ModelEntry(BaseModel):
    """Desired state of one registered model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: StrictInt = Field(gt=0, description="Version CD moves to staging, then production.")
    note: str | None = Field(default=None, description="Why; shows in history and the plan.")
    rollback: StrictBool = Field(
        default=False,
        description="Explicit rollback marker: waives the regression gate (integrity gates stay).",
    )


class PromotionSpec(BaseModel):
    """The whole file: `models: {<name>: ModelEntry}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, ModelEntry] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedSpec:
    """A parsed spec with where it came from and the line of each model (1-based)."""

    spec: PromotionSpec
    path: Path
    lines: dict[str, int]

    def where(self, model: str) -> str:
        """`file:line` of a model's entry, for messages."""
        return f"{self.path}:{self.lines.get(model, 1)}"


def _line_of(root: Any, loc: tuple[int | str, ...]) -> int:
    """Best line (1-based) for a pydantic error location inside the round-trip tree."""
    node, line = root, 1
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            pos = node.lc.key(key)
            line = pos[0] + 1
            node = node[key]
        else:
            if isinstance(node, CommentedMap) and getattr(node.lc, "line", None) is not None:
                line = max(line, int(node.lc.line) + 1)
            break
    return line


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_yaml(path: Path) -> Any:
    """Round-trip load with duplicate-key detection; errors name file:line."""
    if not path.is_file():
        raise SpecError(f"{path}:1: file not found (hint: run from the repo root or pass --file)")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(
            f"{path}:{line}: duplicate key: {exc.problem} (hint: each key may appear once; "
            "keep one and delete the other)"
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(
            f"{path}:{line}: YAML syntax error: {exc.problem or exc.context} "
            "(hint: check indentation and colons; `yamllint` shows the spot)"
        ) from None
    except YAMLError as exc:
        raise SpecError(f"{path}:1: YAML error: {exc} (hint: fix the YAML syntax)") from None


def load_spec(path: Path) -> LoadedSpec:
    """Parse and validate `promotions.yaml`; raise `SpecError` with file:line and a hint."""
    root = load_yaml(path)
    if not isinstance(root, CommentedMap):
        raise SpecError(
            f"{path}:1: expected a mapping with a top-level `models:` key "
            "(hint: see the contract v1 example in DESIGN.md)"
        )
    models = root.get("models")
    if isinstance(models, CommentedMap):
        for name in models:
            if not isinstance(name, str) or not NAME_RE.match(name):
                line = models.lc.key(name)[0] + 1
                raise SpecError(
                    f"{path}:{line}: bad model name {name!r} (hint: a registered model name: "
                    "letters, digits, '.', '_', '-'; quote it if YAML reads it as a number)"
                )
    try:
        spec = PromotionSpec.model_validate(_plain(root))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            dotted = ".".join(str(p) for p in loc) or "<root>"
            hint = _HINTS.get(err["type"], "see the contract v1 example in DESIGN.md")
            got = f" (got {err['input']!r})" if err["type"] not in ("missing",) else ""
            problems.append(f"{path}:{line}: {dotted}: {err['msg']}{got} (hint: {hint})")
        raise SpecError("\n".join(problems)) from None
    lines = {name: models.lc.key(name)[0] + 1 for name in spec.models}
    return LoadedSpec(spec=spec, path=path, lines=lines)
