"""`promotions.yaml` schema v1: strict, typed, every error with file, line and a fix hint.

A model names one version for both environments (`version: N`) or pins them apart
(`environments: {staging: N, production: M}`); `desired_version(loaded, model, env)` is the one
answer to "which version does git want in this environment" (plan, apply, status, the deploy
release all ask it).

What a reviewer reads is what is promoted: versions are plain decimal integers (`010`, `0x2`,
`3_0`, `+3` are refused, not read as 8, 2, 30 and 3), `rollback` is `true` or `false` (`yes` is
refused) and YAML directives (`%YAML 1.1`, which changes both) are refused.

The file is read as every config file is (`ml.config_file`: duplicate keys, anchors,
directives, deep nesting and oversized files refused, errors with the line of the key); a note
over `MAX_NOTE_CHARS` is refused too (it is copied into the plan comment).
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
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from ml.config_file import line_of, load_yaml, plain, problem, quote
from ml.errors import SpecError

MAX_NOTE_CHARS = 500
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


def _load(path: Path) -> Any:
    """The spec's round-trip tree (`SpecError` naming file:line otherwise)."""
    return load_yaml(
        path,
        missing=f"{path}:1: file not found (hint: run from the repo root or pass --file)",
        error=SpecError,
    )


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
    root = _load(path)
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
        raise SpecError("\n".join(_problem(path, root, err) for err in exc.errors())) from None
    lines = {name: models.lc.key(name)[0] + 1 for name in spec.models}
    return LoadedSpec(spec=spec, path=path, lines=lines)


def _problem(path: Path, root: Any, err: ErrorDetails) -> str:
    """One pydantic error of the spec: the per-type hint, and both forms at `environments:`."""
    loc = tuple(err["loc"])
    line = line_of(root, loc)
    if err["type"] == "value_error":
        if _BOTH_FORMS in str(err["msg"]):
            line = line_of(root, (*loc, "environments"))
        return problem(path, line, err, None)  # the message is its own hint
    return problem(
        path, line, err, _HINTS.get(err["type"], "see the example in docs/promotions.md")
    )


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
    data = _load(path)  # the same limits, anchors refused
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
