"""Notifications reach a real local receiver in Slack's format, retry with backoff, give up
quietly when the receiver is down, and never write the webhook URL anywhere."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ml.cli import app
from ml.notify import NotifySettings, build_payload, drift_fields, notify
from tests.fixtures.receiver import webhook_receiver
from tests.fixtures.services import free_port


def settings(url: str, **kw: float) -> NotifySettings:
    return NotifySettings(webhook_url=SecretStr(url), backoff=0.01, **kw)


def test_cd_and_retrain_messages_arrive_in_slack_format() -> None:
    with webhook_receiver() as receiver:
        # When CD reports a promotion and retrain reports a new version
        assert notify(
            "promotion.applied",
            {"model": "credit-risk", "version": "4", "env": "production", "release": "r-2025.1"},
            settings=settings(receiver.url),
        )
        assert notify(
            "retrain.registered",
            {"model": "credit-risk", "version": "5", "pr": "https://github.com/o/r/pull/12"},
            settings=settings(receiver.url),
        )
    # Then both bodies are Slack incoming-webhook payloads naming what happened
    applied, retrained = receiver.received
    assert applied["text"] == ":white_check_mark: Promotion applied: credit-risk v4 in production"
    details = applied["blocks"][1]["text"]["text"]
    assert "*release*: r-2025.1" in details
    assert details.index("*model*") < details.index("*release*")
    assert retrained["text"].startswith(
        ":package: Retrain registered a new version: credit-risk v5"
    )
    assert "<https://github.com/o/r/pull/12>" in retrained["blocks"][1]["text"]["text"]
    assert receiver.paths[0] == "/hooks/T000/B000/secret-token"


def test_retries_with_backoff_then_delivers() -> None:
    waits: list[float] = []
    with webhook_receiver(fail_first=2) as receiver:
        ok = notify("promotion.failed", {"model": "m"}, settings=settings(receiver.url),
                    sleep=waits.append)  # fmt: skip
    assert ok
    assert receiver.statuses == [500, 500, 200]
    assert waits == [0.01, 0.02]


def test_an_unreachable_receiver_gives_up_without_raising_or_naming_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T000/B000/secret-token"
    caplog.set_level(logging.DEBUG, logger="ml.notify")
    started = time.monotonic()
    assert not notify("promotion.rolled_back", {"model": "m"}, settings=settings(url, attempts=3))
    assert time.monotonic() - started < 5
    assert "not delivered after 3 attempt(s)" in caplog.text
    assert "secret-token" not in caplog.text
    assert "127.0.0.1" not in caplog.text


def test_no_url_means_no_notification(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ml.notify")
    assert not notify("drift.breach", {}, settings=NotifySettings(webhook_url=None))
    assert "NOTIFY_WEBHOOK_URL is not set" in caplog.text


def test_a_client_error_is_not_retried() -> None:
    waits: list[float] = []
    with webhook_receiver(reject=True) as receiver:
        assert not notify("drift.breach", {}, settings=settings(receiver.url), sleep=waits.append)
    assert receiver.statuses == [400]
    assert waits == []


def test_a_non_http_url_is_refused_without_a_request() -> None:
    with webhook_receiver() as receiver:
        bad = settings(receiver.url.replace("http://", "file://"))
        assert not notify("drift.breach", {}, settings=bad)
    assert receiver.statuses == []


def test_settings_never_show_the_url() -> None:
    s = settings("https://hooks.slack.com/services/T/B/secret-token")
    assert "secret-token" not in repr(s)
    assert "secret-token" not in str(s.model_dump())


def test_drift_fields_name_the_breaches() -> None:
    summary = {
        "model": "credit-risk",
        "version": "4",
        "rows": {"current": 1200},
        "drift": {"share": 0.26},
        "breaches": [
            {"check": "drift_share", "value": 0.26, "threshold": 0.2, "features": ["AGE", "PAY_0"]}
        ],
    }
    fields = drift_fields(summary)
    assert fields["breaches"] == "drift_share 0.26 > 0.2 (AGE, PAY_0)"
    payload = build_payload("drift.breach", fields)
    assert payload["text"] == ":warning: Drift threshold crossed: credit-risk v4"


def test_cli_notify_reaches_the_receiver_and_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    with webhook_receiver() as receiver:
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", receiver.url)
        result = runner.invoke(
            app,
            ["notify", "--event", "promotion.applied", "--field", "model=credit-risk",
             "--field", "version=4", "--field", "env=staging", "--field", "broken"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert receiver.received[0]["text"].endswith("credit-risk v4 in staging")
    # An unreachable receiver: still exit 0, a warning, no URL in the output
    down = f"http://127.0.0.1:{free_port()}/hooks/secret-token"
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", down)
    monkeypatch.setenv("NOTIFY_ATTEMPTS", "2")
    monkeypatch.setenv("NOTIFY_BACKOFF", "0")
    result = runner.invoke(app, ["notify", "--event", "promotion.failed", "--field", "model=m"])
    assert result.exit_code == 0
    assert "not delivered" in result.output
    assert "secret-token" not in result.output
