"""Code and docs cite only what a reader of the repository can open.

Every `*.md` path a file under ml/, serve/, dags/, scripts/, docs/ or the README names must exist
(at the repository root or next to the file that names it), and nothing cites an issue number or
a design document that is not in the repository (the design notes, the old contracts file): the
record formats
live in docs/contracts.md, the reasons in the text itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("ml", "serve", "dags", "scripts", "docs", "README.md")
SKIPPED_DIRS = frozenset({"__pycache__", ".venv", "node_modules"})

# Markdown files the code *writes* (outputs, not references): generated reports go under build/
# (git-ignored), and training logs a model card as a run artefact.
GENERATED_PREFIXES = ("build/",)
GENERATED_NAMES = frozenset({"model_card.md"})

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_MD_PATH = re.compile(r"(?<![\w./-])((?:\.{1,2}/)?[\w./-]*[\w-]\.md)(?![\w])")
# Spelled in parts so that a grep of the tree for these names finds only real citations.
DESIGN_DOC = "DESIGN" + ".md"
CONTRACTS_DOC = "CONTRACTS" + ".md"
_FORBIDDEN = (
    (re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE), "cites an issue number"),
    (re.compile(rf"\b{re.escape(DESIGN_DOC)}\b"), f"cites {DESIGN_DOC}, not in the repository"),
    (
        re.compile(rf"\b{re.escape(CONTRACTS_DOC)}\b"),
        f"cites {CONTRACTS_DOC} (the formats are docs/contracts.md)",
    ),
)


def bad_references(text: str, source: Path, root: Path) -> list[str]:
    """The references in `text` (the content of `source`) a reader of `root` cannot follow.

    Args:
        text: the file's content.
        source: the file's path (absolute, under `root`): relative links resolve from its folder.
        root: the repository root.

    Returns:
        One `line N: problem` per bad reference, in order; empty when every reference resolves.
    """
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern, why in _FORBIDDEN:
            for match in pattern.finditer(line):
                problems.append(f"line {number}: {match.group(0)!r} {why}")
        for match in _MD_PATH.finditer(_URL.sub(" ", line)):
            ref = match.group(1)
            if ref.startswith(GENERATED_PREFIXES) or Path(ref).name in GENERATED_NAMES:
                continue
            if ref.upper() in ("DESIGN.MD", "CONTRACTS.MD") and ref != ref.lower():
                continue  # reported above, with its own reason
            if not ((root / ref).is_file() or (source.parent / ref).is_file()):
                problems.append(f"line {number}: {ref} does not exist in the repository")
    return problems


def _scanned_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = root / name
        if path.is_file():
            files.append(path)
            continue
        files.extend(
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(root).parts)
        )
    return files


def scan(root: Path) -> dict[str, list[str]]:
    """Every scanned file of `root` with a bad reference → its problems."""
    found: dict[str, list[str]] = {}
    for path in _scanned_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (a data file, an image): it cites nothing
        problems = bad_references(text, path, root)
        if problems:
            found[str(path.relative_to(root))] = problems
    return found


def test_the_repository_cites_only_what_exists() -> None:
    assert len(_scanned_files(ROOT)) > 100
    assert scan(ROOT) == {}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository: a README, docs/a.md, ml/code.py."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "ml").mkdir()
    (tmp_path / "README.md").write_text("See [a](docs/a.md).\n")
    (tmp_path / "docs" / "a.md").write_text("Back to [the README](../README.md).\n")
    (tmp_path / "ml" / "code.py").write_text('"""Formats: docs/a.md#records."""\n')
    return tmp_path


def test_a_clean_tree_passes(repo: Path) -> None:
    assert scan(repo) == {}


def test_a_missing_markdown_file_is_reported(repo: Path) -> None:
    # given a docstring citing a document nobody wrote
    (repo / "ml" / "code.py").write_text('"""Formats: docs/contracts.md#records."""\n')
    # then the scan names the file, the line and the path
    assert scan(repo) == {
        "ml/code.py": ["line 1: docs/contracts.md does not exist in the repository"]
    }


def test_a_relative_link_resolves_from_its_folder(repo: Path) -> None:
    (repo / "docs" / "b.md").write_text("See [a](a.md) and [c](c.md).\n")
    assert scan(repo) == {"docs/b.md": ["line 1: c.md does not exist in the repository"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"# the gates (issue {15})", f"'issue {15}' cites an issue number"),
        ("Goals (Issues 13-18): fast", "'Issues 13' cites an issue number"),
        (f"see the example in {DESIGN_DOC}", f"'{DESIGN_DOC}' cites {DESIGN_DOC}"),
        (f"Tags ({CONTRACTS_DOC}):", f"'{CONTRACTS_DOC}' cites {CONTRACTS_DOC}"),
    ],
)
def test_issue_numbers_and_design_documents_are_reported(
    repo: Path, text: str, expected: str
) -> None:
    problems = bad_references(text, repo / "ml" / "code.py", repo)
    assert len(problems) == 1
    assert problems[0].startswith(f"line 1: {expected}")


def test_outputs_urls_and_prose_are_not_references(repo: Path) -> None:
    text = (
        "writes build/evaluation.md and the run's model_card.md; "
        "https://github.com/o/r/blob/main/NOTES.md; the issues the team files; *.md files\n"
    )
    assert bad_references(text, repo / "ml" / "code.py", repo) == []
