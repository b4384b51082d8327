"""Notes are the PR author's free text: shown as text in the terminal and the PR comment."""

from __future__ import annotations

import pytest

from ml.promotions import render


@pytest.mark.parametrize(
    ("note", "shown"),
    [
        ("clear \x1b[2J\x1b[31mred", "clear \\x1b[2J\\x1b[31mred"),  # screen clear, colour
        ("title \x1b]0;pwned\x07", "title \\x1b]0;pwned\\x07"),  # terminal title
        ("line\nbreak\r", "line break "),
        ("del\x7f c1\x9b", "del\\x7f c1\\x9b"),
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        (None, ""),
    ],
)
def test_terminal_shows_controls_as_escapes(note: str | None, shown: str) -> None:
    assert render.terminal(note) == shown


@pytest.mark.parametrize(
    ("note", "shown"),
    [
        ('<img src=x onerror="1">', '&lt;img src=x onerror="1"&gt;'),
        (
            "<!-- hide -->",
            "&lt;\\!\\-\\-&lt;".replace("&lt;\\!\\-\\-&lt;", "&lt;\\!\\-\\- hide \\-\\-&gt;"),
        ),
        (
            "**bold** [link](http://x) | cell",
            "\\*\\*bold\\*\\* \\[link\\]\\(http\\://x\\) \\| cell",
        ),
        ("cc @org/team", "cc \\@org/team"),
        ("a\nb", "a b"),
    ],
)
def test_markdown_escapes_html_and_markdown(note: str, shown: str) -> None:
    assert render.markdown(note) == shown
