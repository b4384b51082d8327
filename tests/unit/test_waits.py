"""The CLI's budget on outside services: set once (a user's setting wins), a progress line past
a few seconds, and a one-line message that names the service without its credentials."""

from __future__ import annotations

import time

import pytest

from ml import waits


@pytest.fixture
def progress(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(waits, "_progress", True)
    monkeypatch.setattr(waits, "PROGRESS_AFTER_S", 0.05)


def test_defaults_bound_mlflow_and_botocore_and_keep_what_the_user_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    monkeypatch.setattr(waits, "_progress", False)

    waits.apply_defaults()

    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == str(waits.MLFLOW_RETRIES)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
    assert os.environ["AWS_MAX_ATTEMPTS"] == str(waits.AWS_MAX_ATTEMPTS)


@pytest.mark.usefixtures("progress")
def test_a_long_wait_prints_progress_naming_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    with waits.waiting("the MLflow registry", "http://mlflow:5000"):
        time.sleep(0.2)

    lines = capsys.readouterr().err.splitlines()
    assert lines
    assert lines[0].startswith("waiting for the MLflow registry at http://mlflow:5000… (")


@pytest.mark.usefixtures("progress")
def test_a_short_wait_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with waits.waiting("the MLflow registry", "http://mlflow:5000"):
        pass
    time.sleep(0.1)

    assert capsys.readouterr().err == ""


def test_where_drops_credentials_path_and_query() -> None:
    assert waits.where("https://alice:pw@mlflow.example:8443/x?token=1") == (
        "https://mlflow.example:8443"
    )
    assert waits.where(None) == "an unknown address"


@pytest.mark.parametrize(
    ("text", "how"),
    [
        (
            "API request to http://h/api failed with exception HTTPConnectionPool(host='h', "
            "port=5): Max retries exceeded (Caused by NewConnectionError: Connection refused)",
            "refused the connection",
        ),
        ("HTTPConnectionPool(host='h', port=5): Read timed out. (read timeout=10)", "in time"),
    ],
)
def test_the_unreachable_message_is_one_line_with_the_fix(text: str, how: str) -> None:
    exc = Exception(text)

    assert waits.is_connection_failure(exc)
    line = waits.unreachable_message("the MLflow registry", "http://h:5", exc, "check it")
    assert line.startswith("the MLflow registry at http://h:5 ")
    assert how in line
    assert line.endswith("; check it")


def test_an_answered_error_is_not_a_connection_failure() -> None:
    assert not waits.is_connection_failure(Exception("RESOURCE_DOES_NOT_EXIST: no model x"))
