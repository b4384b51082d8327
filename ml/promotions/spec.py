"""`promotions.yaml` schema v1: strict, typed, every error with file, line and a fix hint.

A model names one version for both environments (`version: N`) or pins them apart
(`environments: {staging: N, production: M}`); `desired_version(loaded, model, env)` is the one
answer to "which version does git want in this environment" (plan, apply, status, the deploy
release all ask it).

What a reviewer reads is what is promoted: versions are plain decimal integers (`010`, `0x2`,
`3_0`, `+3` are refused, not read as 8, 2, 30 and 3), `rollback` is `true` or `false` (`yes` is
refused) and YAML directives (`%YAML 1.1`, which changes both) are refused.

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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
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
_BOTH_FORMS = (
    "`version` and `environments` together: keep one (hint: `version: N` pins both "
    "environments; `environments: {staging: N, production: M}` pins them apart)"
)
_NO_FORM = (
    "Field required: `version: N` (hint: or `environments: {staging: N, production: M}` to pin "
    "the environments apart)"
)
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)$")  # a sign or zero is the range check's to name
_VERSION_KEYS = ("version",)
_PIN_KEYS = ("staging", "production")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

_HINTS = {
    "extra_forbidden": "allowed keys: models.<name>.version (or .environments), .note, .rollback",
    "int_type": "write the version as a bare integer, e.g. `version: 4` (no quotes, no decimals)",
    "greater_than": "versions start at 1; use a version number shown by `mlops promote plan`",
    "missing": "every model needs `version: <int>` or `environments: {staging: N, production: M}`",
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


class EnvironmentPins(BaseModel):
    """`environments: {staging: N, production: M}`: each environment pinned to its own version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    staging: StrictInt = Field(gt=0, description="Version staging runs.")
    production: StrictInt = Field(gt=0, description="Version production runs.")


class ModelEntry(BaseModel):
    """Desired state of one registered model: `version` (both environments) or `environments`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: StrictInt | None = Field(
        default=None, gt=0, description="Version CD moves to staging, then production."
    )
    environments: EnvironmentPins | None = Field(
        default=None, description="Staging and production pinned apart (instead of `version`)."
    )
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE_CHARS,
        description="Why; shows in history and the plan.",
    )
    rollback: StrictBool = Field(
        default=False,
        description=(
            "Explicit rollback marker: waives the gates that compare with production "
            "(regression, canary) and the soak; integrity, tags, contract and floors stay."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "version" in data and "environments" in data:
                raise ValueError(_BOTH_FORMS)
            if "version" not in data and "environments" not in data:
                raise ValueError(_NO_FORM)
            if "version" in data and data["version"] is None:
                raise ValueError("version: Input should be a valid integer (got None)")
        return data

    def version_in(self, env: str) -> int:
        """The version git wants in `env` (`staging` or `production`)."""
        if self.environments is not None:
            return int(getattr(self.environments, env))
        assert self.version is not None  # the validator requires one form
        return self.version

    @property
    def pinned_apart(self) -> bool:
        """True for the `environments:` form."""
        return self.environments is not None


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


def desired_version(loaded: LoadedSpec, model: str, env: str) -> int | None:
    """The version git wants for `model` in `env` (None when the spec does not name the model).

    The one reading of both forms: `version: N` (both environments) and
    `environments: {staging: N, production: M}`. Deploys and releases read it through here.
    """
    entry = loaded.spec.models.get(model)
    return None if entry is None else entry.version_in(env)


def desired_versions(loaded: LoadedSpec, env: str) -> dict[str, int]:
    """`desired_version` of every model of the spec in `env`, in file order."""
    return {name: entry.version_in(env) for name, entry in loaded.spec.models.items()}


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


def _refuse_directives(path: Path, text: str) -> None:
    """`%YAML 1.1` turns `010` into 8 and `yes` into true: the reviewer would not read what is
    promoted. No directive is needed in these files, so every one is refused."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("%"):
            raise SpecError(
                f"{path}:{number}: YAML directive {quote(line.split()[0])} is not allowed "
                "(hint: delete the line; the file is read as YAML 1.2)"
            )


def load_yaml(path: Path) -> Any:
    """Round-trip load with duplicate-key detection, no anchors and no directives; errors name
    file:line."""
    text = _read(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    _refuse_directives(path, text)
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


def _raw_scalar(lines: list[str], node: CommentedMap, key: str) -> tuple[int, str]:
    """(1-based line, source text) of the plain scalar value of `key` in `node`."""
    line, col = node.lc.value(key)
    rest = lines[line][col:] if line < len(lines) else ""
    return line + 1, re.split(r"[\s,}#\]]", rest, maxsplit=1)[0]


def _refuse_loose_scalars(path: Path, text: str, models: CommentedMap) -> None:
    """Versions only as plain decimal integers, `rollback` only as `true`/`false`.

    YAML reads `0x2`, `3_0`, `+3` as numbers and (with a 1.1 directive) `010` as 8 and `yes` as
    true; the reviewer of a pull request reads something else. Quoted values are left to the
    type check (a string is not a version).
    """
    lines = text.splitlines()
    for entry in models.values():
        if not isinstance(entry, CommentedMap):
            continue
        checks: list[tuple[CommentedMap, str, str]] = [(entry, k, "version") for k in _VERSION_KEYS]
        pins = entry.get("environments")
        if isinstance(pins, CommentedMap):
            checks += [(pins, k, "version") for k in _PIN_KEYS]
        checks.append((entry, "rollback", "bool"))
        for node, key, kind in checks:
            value = node.get(key)
            if kind == "version" and (not isinstance(value, int) or isinstance(value, bool)):
                continue  # not a number: the type check names it
            if kind == "bool" and not isinstance(value, bool):
                continue
            line, raw = _raw_scalar(lines, node, key)
            if kind == "version" and not _DECIMAL.match(raw):
                raise SpecError(
                    f"{path}:{line}: {key}: {quote(raw)} is not a plain decimal integer (hint: "
                    f"write it as digits only, e.g. `{key}: {_plain_int(node[key])}`; leading "
                    "zeros, 0x, underscores and signs are refused)"
                )
            if kind == "bool" and raw not in ("true", "false"):
                raise SpecError(
                    f"{path}:{line}: rollback: {quote(raw)} is not true or false (hint: write "
                    "`rollback: true` or remove the key)"
                )


def _plain_int(value: object) -> str:
    return str(int(value)) if isinstance(value, int) and not isinstance(value, bool) else "4"


def load_spec(path: Path) -> LoadedSpec:
    """Parse and validate `promotions.yaml`; raise `SpecError` with file:line and a hint."""
    root = load_yaml(path)
    if not isinstance(root, CommentedMap):
        raise SpecError(
            f"{path}:1: expected a mapping with a top-level `models:` key "
            "(hint: see the example in docs/promotions.md)"
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
        _refuse_loose_scalars(path, path.read_text(encoding="utf-8"), models)
    try:
        spec = PromotionSpec.model_validate(plain(root))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = line_of(root, loc)
            if err["type"] == "value_error" and _BOTH_FORMS in str(err["msg"]):
                line = line_of(root, (*loc, "environments"))
            dotted = ".".join(str(p) for p in loc) or "<root>"
            hint = _HINTS.get(err["type"], "see the example in docs/promotions.md")
            got = (
                f" (got {quote(err['input'])})"
                if err["type"] not in ("missing", "value_error")
                else ""
            )
            if err["type"] == "value_error":
                message = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{path}:{line}: {dotted}: {message}")
                continue
            problems.append(f"{path}:{line}: {dotted}: {err['msg']}{got} (hint: {hint})")
        raise SpecError("\n".join(problems)) from None
    lines = {name: models.lc.key(name)[0] + 1 for name in spec.models}
    return LoadedSpec(spec=spec, path=path, lines=lines)


def edit_entry(
    path: Path,
    model: str,
    *,
    version: int,
    note: str,
    rollback: bool,
    env: str | None = None,
) -> LoadedSpec:
    """Set one model's entry in place, keeping comments and layout (ruamel round trip).

    `rollback` writes `rollback: true` (the explicit regression waiver) or removes the key: a
    promotion is not a rollback. `env` pins only that environment of an `environments:` entry
    (a `version:` entry keeps meaning both, so it changes both). The result must still satisfy
    the contract.
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
    pins = node.get("environments")
    if env is not None and isinstance(pins, CommentedMap):
        pins[env] = version
    elif isinstance(pins, CommentedMap):
        pins["staging"] = pins["production"] = version
    else:
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
