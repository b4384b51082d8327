"""The model risk record's two renderings: the same blocks as markdown and as one self-contained
HTML file, every value escaped (a run parameter or a PR note is anyone's text)."""

from __future__ import annotations

import re

from ml.governance.report import Heading, Para, Table, html, markdown

HOSTILE = '<script>fetch("https://evil.example/x")</script> | <img src=x onerror=alert(1)> & "q"'
BLOCKS = [
    Heading(1, "Model risk record: release r1"),
    Table(("field", "value"), [("note", HOSTILE), ("gate", "FAIL")]),
    Heading(3, "Reason codes"),
    Para(f"texts: {HOSTILE}"),
]


def test_html_is_self_contained_and_escapes_every_value() -> None:
    page = html(BLOCKS, f"record {HOSTILE}")
    # Then nothing in it runs or loads: no script, no element with a source, a strict CSP
    assert "<script" not in page
    assert "<img" not in page
    assert not re.search(r"<[^>]*\s(src|href|on\w+)=", page)  # no tag with a source or handler
    assert "default-src 'none'" in page
    # And the values are all there, as text
    assert "&lt;script&gt;fetch(&quot;https://evil.example/x&quot;)&lt;/script&gt;" in page
    assert "&amp; &quot;q&quot;" in page
    assert '<td class="FAIL">FAIL</td>' in page
    assert "<h1>Model risk record: release r1</h1>" in page
    assert page.count("<table>") == 1


def test_markdown_keeps_each_row_in_its_table() -> None:
    text = markdown(BLOCKS)
    assert text.startswith("# Model risk record: release r1\n\n| field | value |\n|---|---|\n")
    (row,) = [line for line in text.splitlines() if line.startswith("| note |")]
    assert row.count(" | ") == 1  # the value's own pipe is escaped
    assert "\\|" in row
