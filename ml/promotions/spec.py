"""`promotions.yaml` contract v1: strict, typed, every error with file, line and a fix hint.

The file is read with ruamel.yaml's round-trip loader: it refuses duplicate keys and keeps the
line of every key, so a pydantic error on `models.credit-risk.version` can point at its line.

Hostile input is refused before it costs anything: a file over `MAX_FILE_BYTES`, any YAML anchor
or alias (a 488-byte file of nested aliases once expanded to 2.6 GB), nesting deeper than the
parser's stack, and a note over `MAX_NOTE_CHARS` (it is copied into the plan comment). An error
quotes at most `_QUOTE_CHARS` characters of one line of the input.
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
from ruamel.yaml.events import AliasEvent, NodeEvent

from ml.errors import SpecError

MAX_FILE_BYTES = 64 * 1024
MAX_NOTE_CHARS = 500
MAX_FLOW_DEPTH = 32
_QUOTE_CHARS = 60
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

_HINTS = {
    "extra_forbidden": "allowed keys: models.<name>.version, .note, .rollback",
    "int_type": "write the version as a bare integer, e.g. `version: 4` (no quotes, no decimals)",
    "greater_than": "versions start at 1; use a version number shown by `mlops promote plan`",
    "missing": "every model needs `version: <int>`",
    "string_type": 'quote the note: note: "why this version"',
    "bool_type": "write `rollback: true` or remove the key",
    "dict_type": "expected a mapping: `models:` then `  <name>:` then `    version: N`",
    "string_too_long": f"keep the note under {MAX_NOTE_CHARS} characters; link to details",
}


def quote(value: object) -> str:
    """A value for an error message: its repr, first line only, at most `_QUOTE_CHARS`."""
    text = repr(value)
    line = text.splitlines()[0] if text else text
    if len(line) > _QUOTE_CHARS or line != text:
        return line[:_QUOTE_CHARS] + "…"
    return line


class ModelEntry(BaseModel):
    """Desired state of one registered model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: StrictInt = Field(gt=0, description="Version CD moves to staging, then production.")
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE_CHARS,
        description="Why; shows in history and the plan.",
    )
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


def line_of(root: Any, loc: tuple[int | str, ...]) -> int:
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


def plain(node: Any) -> Any:
    """The round-trip tree as plain dicts and lists (safe: anchors are refused on load)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]


def _read(path: Path) -> str:
    if not path.is_file():
        raise SpecError(f"{path}:1: file not found (hint: run from the repo root or pass --file)")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SpecError(
            f"{path}:1: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit "
            "(hint: the spec holds versions and short notes; move long text elsewhere)"
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}:1: not UTF-8 text ({exc.reason})") from None


def _refuse_deep_nesting(path: Path, text: str) -> None:
    """Refuse more than `MAX_FLOW_DEPTH` open `[`/`{`: the YAML scanner slows down
    quadratically with flow nesting (5,000 levels take a minute) before it fails."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            if char in "[{":
                depth += 1
                if depth > MAX_FLOW_DEPTH:
                    raise SpecError(
                        f"{path}:{number}: YAML nested too deeply (over {MAX_FLOW_DEPTH} "
                        "levels of [ or {; hint: models.<name>.version is two levels)"
                    )
            elif char in "]}":
                depth = max(0, depth - 1)


def _refuse_anchors(yaml: YAML, path: Path, text: str) -> None:
    """Scan the event stream (cheap, nothing built) and refuse any anchor or alias."""
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and event.anchor is not None
        ):
            mark = event.start_mark
            line = mark.line + 1 if mark else 1
            raise SpecError(
                f"{path}:{line}: YAML anchors and aliases (&name, *name) are not allowed "
                "(hint: write each value out)"
            )


def load_yaml(path: Path) -> Any:
    """Round-trip load with duplicate-key detection and no anchors; errors name file:line."""
    text = _read(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    _refuse_deep_nesting(path, text)
    try:
        _refuse_anchors(yaml, path, text)
        return yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(
            f"{path}:{line}: duplicate key: {_one_line(exc.problem)} (hint: each key may appear "
            "once; keep one and delete the other)"
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(
            f"{path}:{line}: YAML syntax error: {_one_line(exc.problem or exc.context)} "
            "(hint: check indentation and colons; `yamllint` shows the spot)"
        ) from None
    except YAMLError as exc:
        raise SpecError(
            f"{path}:1: YAML error: {_one_line(exc)} (hint: fix the YAML syntax)"
        ) from None
    except RecursionError:
        raise SpecError(f"{path}:1: YAML nested too deeply (hint: models.<name>.version)") from None


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
                    f"{path}:{line}: bad model name {quote(name)} (hint: a registered model name: "
                    "letters, digits, '.', '_', '-'; quote it if YAML reads it as a number)"
                )
    try:
        spec = PromotionSpec.model_validate(plain(root))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = line_of(root, loc)
            dotted = ".".join(str(p) for p in loc) or "<root>"
            hint = _HINTS.get(err["type"], "see the contract v1 example in DESIGN.md")
            got = f" (got {quote(err['input'])})" if err["type"] not in ("missing",) else ""
            problems.append(f"{path}:{line}: {dotted}: {err['msg']}{got} (hint: {hint})")
        raise SpecError("\n".join(problems)) from None
    lines = {name: models.lc.key(name)[0] + 1 for name in spec.models}
    return LoadedSpec(spec=spec, path=path, lines=lines)


def edit_entry(path: Path, model: str, *, version: int, note: str, rollback: bool) -> LoadedSpec:
    """Set one model's entry in place, keeping comments and layout (ruamel round trip).

    `rollback` writes `rollback: true` (the explicit regression waiver) or removes the key: a
    promotion is not a rollback. The result must still satisfy the contract.
    """
    if len(note) > MAX_NOTE_CHARS:
        raise SpecError(f"note is {len(note)} characters, over {MAX_NOTE_CHARS} (hint: shorten it)")
    data = load_yaml(path)  # the same limits, anchors refused
    if not isinstance(data, CommentedMap):
        raise SpecError(f"{path}:1: expected a mapping with a top-level `models:` key")
    models = data.setdefault("models", CommentedMap())
    if not isinstance(models.get(model), CommentedMap):
        models[model] = CommentedMap()
    node = models[model]
    node["version"] = version
    node["note"] = note
    if rollback:
        node["rollback"] = True
    else:
        node.pop("rollback", None)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    return load_spec(path)
