"""Every command the README and docs/*.md show runs as shown.

Commands are taken from fenced code blocks (no language, bash, sh, shell, console; a block drawn
with box characters is a diagram and skipped) and from code spans in table rows (a "what you do |
command" cell is a command to run). Each `mlops …` command is checked against the real CLI, in
process, through click's view of the typer app: the verb exists, every flag it uses is one the
verb accepts (with a value where the flag takes one), and every required option and argument is
there. Each `make X` names a target of the Makefile or mk/*.mk. Code spans in prose name verbs
("`mlops data check`, the retrain's first step"): they are checked for the verb and its flags,
not for completeness.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from ml.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
DIAGRAM = re.compile(r"[─│┌┐└┘├┤►◄▼▲]")
FENCE = re.compile(r"^\s*```\s*(\S*)\s*$")
CODE_SPAN = re.compile(r"`([^`]+)`")
SEPARATORS = {"&&", "||", ";", "|"}
MAKE_OPTIONS_WITH_VALUE = {"-f", "-C", "-W", "-o", "-I", "--file", "--directory"}


@dataclass(frozen=True)
class Shown:
    """One command as a document shows it."""

    where: str
    text: str
    complete: bool  # a command to run (fenced or in a table), not a verb named in prose


TABLE_SEPARATOR = re.compile(r"^\|[\s:|-]+$")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _blocks(path: Path) -> Iterator[Shown]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(ROOT).as_posix()
    block: list[tuple[int, str]] | None = None
    language = ""
    headers: list[str] | None = None
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if fence and block is None:
            block, language = [], fence.group(1).lower()
            continue
        if fence and block is not None:
            if language in SHELL_LANGUAGES and not any(DIAGRAM.search(t) for _, t in block):
                yield from _commands(rel, block)
            block = None
            continue
        if block is not None:
            block.append((number, line))
            continue
        if not line.startswith("|"):
            headers = None
        elif number < len(lines) and TABLE_SEPARATOR.match(lines[number].strip()):
            headers = [c.strip().lower() for c in CELL_SPLIT.split(line.strip().strip("|"))]
            continue
        cells = CELL_SPLIT.split(line.strip().strip("|")) if line.startswith("|") else [line]
        for column, cell in enumerate(cells):
            # a code span in a table's "command" column is a command to run; elsewhere, a verb
            complete = (
                bool(headers)
                and "command" in (headers or [""])[min(column, len(headers or [""]) - 1)]
            )
            for span in CODE_SPAN.findall(cell):
                span = span.replace("\\|", "|")
                if re.match(r"(\S*/)?(mlops|make)\s", span + " "):
                    yield Shown(f"{rel}:{number}", span, complete)


def _commands(rel: str, block: list[tuple[int, str]]) -> Iterator[Shown]:
    """Shell lines of a block, continuation lines joined."""
    pending, start = "", 0
    for number, line in block:
        if not pending:
            start = number
        pending += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if line.rstrip().endswith("\\"):
            continue
        yield Shown(f"{rel}:{start}", pending.strip(), complete=True)
        pending = ""


def _segments(text: str) -> Iterator[list[str]]:
    """The simple commands of a shell line (split at &&, ||, ;, |), comments dropped."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # not shell (an apostrophe in prose or a comment): words as written
        words = text.split(" #", 1)[0].split()
    current: list[str] = []
    for word in words:
        if word in SEPARATORS:
            yield current
            current = []
        else:
            current.append(word)
    yield current


ASSIGNMENT = re.compile(r"^(?:export\s+)?[A-Z_][A-Z0-9_]*=")


def _variables(path: Path) -> dict[str, list[str]]:
    """Shell variables a document's blocks set (`B="--repo $REPO ..."`), as the words they give."""
    found: dict[str, list[str]] = {}
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        if not ASSIGNMENT.match(line.strip()):
            continue
        for word in next(_segments(line.strip())):
            name, equals, value = word.partition("=")
            if equals and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                found[name] = value.split()
    return found


def _expand(words: list[str], variables: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for word in words:
        name = word[1:].strip("{}") if word.startswith("$") else ""
        out.extend(variables.get(name, [word]))
    return out


def _invocations() -> list[tuple[Shown, str, list[str]]]:
    """(shown, program, arguments) of every `mlops` and `make` invocation in the docs."""
    found = []
    for path in DOCS:
        variables = _variables(path)
        for shown in _blocks(path):
            if not re.search(r"\b(mlops|make)\b", shown.text):
                continue
            for segment in _segments(shown.text):
                words = _expand(segment, variables)
                for i, word in enumerate(words):
                    program = word.rsplit("/", 1)[-1]
                    if program in ("mlops", "make"):
                        found.append((shown, program, words[i + 1 :]))
                        break
    return found


INVOCATIONS = _invocations()
MLOPS = [(s, args) for s, program, args in INVOCATIONS if program == "mlops"]
MAKE = [(s, args) for s, program, args in INVOCATIONS if program == "make"]


def _clean(word: str) -> str:
    """A synopsis's optional part (`[--window 24h]`) is checked as if given."""
    return word.strip("[]") if word.startswith("[") or word.endswith("]") else word


@functools.cache
def _cli() -> Any:
    """The click command tree typer builds from the app (typer vendors click: duck-typed)."""
    return typer.main.get_command(app)


def check_mlops(args: list[str], complete: bool) -> list[str]:
    """What is wrong with `mlops ARGS` for the real CLI (empty when it runs as shown)."""
    command = _cli()
    path = ["mlops"]
    words = [_clean(w) for w in args if _clean(w)]
    while words and hasattr(command, "commands") and not words[0].startswith("-"):
        if words[0].isupper() or words[0].startswith("<"):  # `mlops VERB`, `mlops <verb>`
            return []
        # `release create|verify`: every alternative must exist; the first one goes on
        alternatives = words.pop(0).split("|")
        missing = [a for a in alternatives if a not in command.commands]
        if missing:
            return [f"`{' '.join(path)}` has no verb {missing[0]!r}"]
        path.append(alternatives[0])
        command = command.commands[alternatives[0]]
    if hasattr(command, "commands") and complete and not words:
        return [] if len(path) == 1 else [f"`{' '.join(path)}` needs a verb"]
    options = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
    problems, seen, positionals = [], set(), 0
    while words:
        word = words.pop(0)
        if word == "--help":
            return []
        if word == "--":  # the end of options: what follows goes to the verb's ARGS as is
            positionals += len(words) or 1
            break
        if word.startswith("-") and len(word) > 1 and not re.match(r"-\d", word):
            name, has_value, _ = word.partition("=")
            # `--commit|--pr`, `--stages/--no-stages`: each alternative must be an option
            names = re.split(r"[|/](?=-)", name)
            params = [options.get(n) for n in names]
            for n, param in zip(names, params, strict=True):
                if param is None:
                    problems.append(f"`{' '.join(path)}` has no option {n}")
                else:
                    seen.add(param.name)
            param = params[0]
            if param is None or len(names) > 1:
                continue
            takes_value = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
            if takes_value and not has_value:
                if words:
                    words.pop(0)
                elif complete:
                    problems.append(f"`{' '.join(path)} {name}` needs a value")
        else:
            positionals += 1
    if complete:
        for param in command.params:
            if not param.required or param.name in seen:
                continue
            if param.param_type_name == "argument":
                if positionals == 0:
                    problems.append(f"`{' '.join(path)}` needs its argument {param.name.upper()}")
                positionals -= 1
            else:
                problems.append(f"`{' '.join(path)}` requires {param.opts[0]}")
    return problems


def _make_targets() -> set[str]:
    rule = re.compile(r"^([a-zA-Z0-9_.-]+(?:[ \t]+[a-zA-Z0-9_.-]+)*)[ \t]*:(?!=)", re.MULTILINE)
    targets: set[str] = set()
    for makefile in [ROOT / "Makefile", *(ROOT / "mk").glob("*.mk")]:
        for names in rule.findall(makefile.read_text(encoding="utf-8")):
            targets.update(names.split())
    return targets


def check_make(args: list[str], targets: set[str]) -> list[str]:
    """Targets `make ARGS` names that no makefile defines."""
    wanted, words = [], list(args)
    while words:
        word = words.pop(0)
        if word in MAKE_OPTIONS_WITH_VALUE:
            words = words[1:]
        elif not word.startswith(("-", "(")) and "=" not in word:
            wanted.append(word)
    # `make dvc-*` in prose names a family of targets: it must match one
    return [f"make has no target {t!r}" for t in wanted if not fnmatch.filter(targets, t)]


def test_the_docs_show_commands_at_all() -> None:
    # The extraction finds the README's make targets and the docs' mlops commands
    assert any(s.where.startswith("README.md") for s, _ in MAKE)
    assert len(MLOPS) > 30


@pytest.mark.parametrize(
    ("shown", "args"), MLOPS, ids=[f"{s.where} {' '.join(a)[:40]}" for s, a in MLOPS]
)
def test_every_mlops_command_shown_is_accepted_by_the_cli(shown: Shown, args: list[str]) -> None:
    assert check_mlops(args, shown.complete) == [], f"{shown.where}: {shown.text}"


def test_every_make_target_shown_exists() -> None:
    targets = _make_targets()
    problems = [f"{s.where}: {p}" for s, args in MAKE for p in check_make(args, targets)]
    assert problems == []


@pytest.mark.parametrize(
    ("args", "complete", "problem"),
    [
        (["data", "check", "--current", "F"], True, "`mlops data check` requires --reference"),
        (["preflight"], True, "`mlops preflight` requires --env"),
        (["data", "chek"], False, "`mlops data` has no verb 'chek'"),
        (["train", "--modle", "xgboost"], False, "`mlops train` has no option --modle"),
        (["data", "add"], True, "`mlops data add` needs its argument FILE"),
    ],
)
def test_the_check_catches_what_a_user_would_trip_on(
    args: list[str], complete: bool, problem: str
) -> None:
    assert problem in check_mlops(args, complete)


def test_the_promotions_file_says_what_a_rollback_waives() -> None:
    # promotions.yaml's header is what a reviewer of a rollback PR reads: it names every gate
    # an explicit rollback waives (ml/promotions/gates.py) and production's soak
    from ml.promotions.gates import WAIVED_ON_ROLLBACK

    text = (ROOT / "promotions.yaml").read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    sentence = header[header.index("rollback: true") :]
    for gate in (*sorted(WAIVED_ON_ROLLBACK), "soak"):
        assert gate in sentence, f"promotions.yaml's header does not say a rollback waives {gate}"
