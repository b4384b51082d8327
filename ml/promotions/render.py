"""Free text from the spec (a model's `note`) rendered as text wherever it is shown.

A note is written by whoever opens a pull request. In a terminal, escape codes in it could
rewrite what an on-call engineer reads (move the cursor, hide a line, change the title); in the
PR comment, raw HTML or markdown could hide or fake parts of the plan a reviewer approves, or
mention people. `terminal` makes control and bidirectional-override characters visible as
escapes; `markdown` escapes HTML and markdown so the note shows literally, on one line.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidi overrides/isolates that reorder what is displayed
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~@:])")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: str | None) -> str:
    """`text` on one line with every control or bidi character shown as an escape (`\\x1b`)."""
    if not text:
        return ""
    one_line = " ".join(text.replace("\t", " ").split(" "))
    return _UNSAFE.sub(lambda m: " " if m.group() in "\n\r" else _visible(m.group()), one_line)


def markdown(text: str | None) -> str:
    """`text` as literal markdown on one line: HTML escaped, markdown punctuation escaped,
    controls shown as escapes (safe in a table cell)."""
    plain = terminal(text)
    html = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", html)
