"""A strict YAML config file: read one way, every mistake named as `file:line: key: problem (hint)`.

Every reviewed config file (`promotions.yaml`, `config/*.yaml`) is read here. The file is read
with ruamel.yaml's round-trip loader as YAML 1.2: it refuses duplicate keys (a plain YAML reader
silently keeps the last one) and keeps the line of every key, so a pydantic error on
`drift.max_drift_share` can point at its line. `yes` stays the string "yes" and `010` the number
10, as a reviewer reads them.

Hostile input is refused before it costs anything: a file over `MAX_FILE_BYTES`, any YAML anchor
or alias (a 488-byte file of nested aliases once expanded to 2.6 GB), nesting deeper than
`MAX_FLOW_DEPTH`, and `%` directives (`%YAML 1.1` would turn `010` into 8 and `yes` into true).
An error quotes at most `QUOTE_CHARS` characters of one line of the input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, NodeEvent

from ml.errors import ConfigError

MAX_FILE_BYTES = 64 * 1024
MAX_FLOW_DEPTH = 32
QUOTE_CHARS = 60

Model = TypeVar("Model", bound=BaseModel)
# The fix for one pydantic error: one text for every error, or one per error (None: no hint).
Hint = str | Callable[[ErrorDetails], str | None]


def quote(value: object) -> str:
    """A value for an error message: its repr, first line only, at most `QUOTE_CHARS`."""
    text = repr(value)
    line = text.splitlines()[0] if text else text
    if len(line) > QUOTE_CHARS or line != text:
        return line[:QUOTE_CHARS] + "…"
    return line


def load_yaml(path: Path, *, missing: str, error: type[ConfigError] = ConfigError) -> Any:
    """The round-trip tree of `path` (None for an empty file), read strictly.

    Args:
        path: The config file.
        missing: The whole message when `path` is not a file: what it is and how to point at it.
        error: The class raised (`SpecError` for the promotion files, else `ConfigError`).

    Raises:
        ConfigError: (of class `error`) one line naming `path:line`, the problem and the fix.
    """
    text = _read(path, missing, error)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    _refuse_directives(path, text, error)
    _refuse_deep_nesting(path, text, error)
    try:
        _refuse_anchors(yaml, path, text, error)
        return yaml.load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise error(
            f"{path}:{line}: duplicate key: {_one_line(exc.problem)} (hint: each key may appear "
            "once; keep one and delete the other)"
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise error(
            f"{path}:{line}: YAML syntax error: {_one_line(exc.problem or exc.context)} "
            "(hint: check indentation and colons; `yamllint` shows the spot)"
        ) from None
    except YAMLError as exc:
        raise error(f"{path}:1: YAML error: {_one_line(exc)} (hint: fix the YAML syntax)") from None
    except RecursionError:
        raise error(
            f"{path}:1: YAML nested too deeply (hint: write nested mappings as indented blocks)"
        ) from None


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
    """The round-trip tree as plain dicts, lists and built-in scalars (safe: anchors are refused
    on load). ruamel's scalar subclasses (ScalarFloat, ScalarInt, LiteralScalarString) become
    float, int and str, so a value passed on as it is (hyperparameters) is what YAML meant."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool):
        return node
    for kind in (int, float, str):
        if isinstance(node, kind) and type(node) is not kind:
            return kind(node)
    return node


def problem(path: Path, line: int, err: ErrorDetails, hint: str | None) -> str:
    """One pydantic error as one line: `path:line: dotted.loc: message (got …) (hint: …)`."""
    dotted = ".".join(str(p) for p in err["loc"]) or "<root>"
    message = str(err["msg"]).removeprefix("Value error, ")
    got = f" (got {quote(err['input'])})" if err["type"] not in ("missing", "value_error") else ""
    fix = f" (hint: {hint})" if hint else ""
    return f"{path}:{line}: {dotted}: {message}{got}{fix}"


def validate(
    model: type[Model],
    root: Any,
    path: Path,
    *,
    hint: Hint,
    error: type[ConfigError] = ConfigError,
) -> Model:
    """`root` (from `load_yaml`) validated as `model`; every problem on its own line.

    Args:
        model: The pydantic model of the whole file.
        root: The round-trip tree (`plain` is applied here; pass `{}` for "all defaults").
        path: The file, for messages.
        hint: The fix, one text for every error or a function of the error.
        error: The class raised.

    Raises:
        ConfigError: (of class `error`) one line per problem, each `path:line: key: message`.
    """
    try:
        return model.model_validate(plain(root))
    except ValidationError as exc:
        lines = [
            problem(
                path,
                line_of(root, tuple(err["loc"])),
                err,
                hint if isinstance(hint, str) else hint(err),
            )
            for err in exc.errors()
        ]
        raise error("\n".join(lines)) from None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:200]


def _read(path: Path, missing: str, error: type[ConfigError]) -> str:
    if not path.is_file():
        raise error(missing)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise error(
            f"{path}:1: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit "
            "(hint: a config file holds settings and short notes; move long text elsewhere)"
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}:1: not UTF-8 text ({exc.reason}; hint: save it as UTF-8)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror})") from None


def _refuse_deep_nesting(path: Path, text: str, error: type[ConfigError]) -> None:
    """Refuse more than `MAX_FLOW_DEPTH` open `[`/`{`: the YAML scanner slows down
    quadratically with flow nesting (5,000 levels take a minute) before it fails."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            if char in "[{":
                depth += 1
                if depth > MAX_FLOW_DEPTH:
                    raise error(
                        f"{path}:{number}: YAML nested too deeply (over {MAX_FLOW_DEPTH} "
                        "levels of [ or {; hint: write nested mappings as indented blocks)"
                    )
            elif char in "]}":
                depth = max(0, depth - 1)


def _refuse_anchors(yaml: YAML, path: Path, text: str, error: type[ConfigError]) -> None:
    """Scan the event stream (cheap, nothing built) and refuse any anchor or alias."""
    for event in yaml.parse(text):
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and event.anchor is not None
        ):
            mark = event.start_mark
            line = mark.line + 1 if mark else 1
            lines = text.splitlines()
            source = lines[line - 1].strip() if line <= len(lines) else ""
            raise error(
                f"{path}:{line}: {quote(source)}: YAML anchors and aliases (&name, *name) are "
                "not allowed (hint: write each value out)"
            )


def _refuse_directives(path: Path, text: str, error: type[ConfigError]) -> None:
    """`%YAML 1.1` turns `010` into 8 and `yes` into true: the reviewer would not read what the
    file says. No directive is needed in these files, so every one is refused."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("%"):
            raise error(
                f"{path}:{number}: YAML directive {quote(line.split()[0])} is not allowed "
                "(hint: delete the line; the file is read as YAML 1.2)"
            )
