"""Credentials and stack traces never leave the process: scrub, one-line exceptions, and the log
record factory that applies them to every logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from serve.redaction import install_log_redaction, one_line, scrub, uri_secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "API request to http://user:hunter22@mlflow:5000/api/2.0/x failed",
            "API request to http://user:***@mlflow:5000/api/2.0/x failed",
        ),
        ("postgresql://mlflow:pw%40x@db:5432/m", "postgresql://mlflow:***@db:5432/m"),
        ("clone https://ghp_abcdef@github.com/o/r", "clone https://***@github.com/o/r"),
        ("plain http://mlflow:5000/ stays", "plain http://mlflow:5000/ stays"),
        (
            "XGBoostError: [10:01:02] bad file\nStack trace:\n  [bt] (0) libxgboost.so(+0x1)",
            "XGBoostError: [10:01:02] bad file",
        ),
        ("two\nlines\tand  spaces", "two lines and spaces"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_hides_registered_secrets_and_bounds_the_length() -> None:
    assert scrub("token s3cret-value in text", secrets=["s3cret-value"]) == "token *** in text"
    assert len(scrub("x" * 1000)) == 300


def test_uri_secrets_are_raw_and_decoded() -> None:
    assert uri_secrets("http://u:p%40ss@h") == {"p%40ss", "p@ss"}
    assert uri_secrets("https://tok@h") == {"tok"}
    assert uri_secrets("http://h:5000") == set()
    assert uri_secrets(None) == set()


def test_one_line_names_the_exception_and_where() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        text = one_line(exc)

    assert text.startswith("KeyError: 'missing' (")
    assert "test_redaction.py:" in text
    assert "\n" not in text


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("serve.test-redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def test_every_log_record_is_scrubbed_and_one_line(captured: io.StringIO) -> None:
    install_log_redaction(["planted-secret-42"])
    logger = logging.getLogger("serve.test-redaction")

    logger.warning("registry %s said planted-secret-42", "http://u:pw1234@h:1/api")
    try:
        raise RuntimeError("failed at http://u:pw1234@h:1/x\nStack trace:\n  [bt] (0) native")
    except RuntimeError:
        logger.exception("load failed")

    lines = captured.getvalue().splitlines()
    assert lines[0] == "registry http://u:***@h:1/api said ***"
    assert lines[1].startswith("load failed: RuntimeError: failed at http://u:***@h:1/x (")
    assert len(lines) == 2, "a traceback leaked into the log"
    assert "pw1234" not in captured.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ('{"authorization": "Basic dXNlcjpw"}', '{"authorization": "Basic ***"}'),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = ***"),
        ("MLFLOW_TRACKING_PASSWORD=hunter22", "MLFLOW_TRACKING_PASSWORD=***"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123 used", "token *** used"),
        ("two\nlines kept", "two\nlines kept"),
    ],
)
def test_redact_masks_credential_shapes_and_keeps_the_layout(text: str, expected: str) -> None:
    from serve.redaction import redact

    assert redact(text) == expected


def test_secrets_from_the_environment_and_its_uris_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serve.redaction import redact, register_secrets

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-secret-1")
    monkeypatch.setenv("ML_TRACKING_URI", "http://u:uri-secret-2@h:5000")
    register_secrets([])

    assert redact("a env-secret-1 b uri-secret-2 c") == "a *** b *** c"


def test_a_redacting_stream_masks_a_secret_written_in_pieces() -> None:
    from serve.redaction import RedactingStream

    target = io.StringIO()
    stream = RedactingStream(target)
    stream.write("View run at: http://alice:hun")
    stream.write("ter22@mlflow:5000/#/x\nnext ")
    stream.write("line")
    stream.flush()

    assert target.getvalue() == "View run at: http://alice:***@mlflow:5000/#/x\nnext line"
    with pytest.raises(TypeError):
        stream.write(b"bytes")  # type: ignore[arg-type]
    assert not hasattr(stream, "buffer")
