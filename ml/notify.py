"""Notifications to a Slack-compatible incoming webhook (`NOTIFY_WEBHOOK_URL`).

One module for every sender: CD (promotion applied / failed / rolled back, with the release),
retrain (the new version and its PR), the drift job and the data gate (their summary on breach).
The payload is Slack's incoming-webhook format (`text` plus Block Kit `blocks`), which Slack,
Mattermost, Rocket.Chat and most chat bridges accept.

A notification reports on a job; it never decides it. `notify` retries with exponential backoff
on connection errors, 429 and 5xx, then gives up with one warning line and returns False. It never
raises, and it never logs the URL (a webhook URL is a credential): messages name the problem
(status, error class), never the address. The POST itself is `ml.adapters.webhook`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.adapters import webhook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventKind:
    """How one event reads: a title, an emoji, and the fields worth showing first."""

    title: str
    emoji: str
    ok: bool


EVENTS: dict[str, EventKind] = {
    "promotion.applied": EventKind("Promotion applied", ":white_check_mark:", True),
    "promotion.failed": EventKind("Promotion failed", ":x:", False),
    "promotion.rolled_back": EventKind("Rolled back", ":rewind:", False),
    "retrain.registered": EventKind("Retrain registered a new version", ":package:", True),
    "retrain.failed": EventKind("Retrain failed", ":x:", False),
    "retrain.late": EventKind("Retrain missed its deadline", ":hourglass:", False),
    "drift.failed": EventKind("Drift job failed", ":x:", False),
    "drift.breach": EventKind("Drift threshold crossed", ":warning:", False),
    "fairness.failed": EventKind("Fairness job failed", ":x:", False),
    "data_check.breach": EventKind("Data check failed", ":warning:", False),
}
# Shown first, in this order, when present; the rest follow alphabetically.
_FIRST = ("model", "version", "env", "release", "previous", "pr", "run", "breaches", "reason")


class NotifySettings(BaseSettings):
    """Where notifications go and how hard to try (NOTIFY_ variables)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", frozen=True)

    webhook_url: SecretStr | None = Field(
        default=None, description="Slack-compatible incoming webhook; unset means no notification."
    )
    timeout: float = Field(default=5.0, gt=0, description="Seconds per attempt.")
    attempts: int = Field(default=4, ge=1, le=10, description="Tries before giving up.")
    backoff: float = Field(default=1.0, ge=0, description="First wait; doubles each retry.")


def build_payload(event: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The Slack-compatible body: a one-line `text` (the fallback) and Block Kit blocks."""
    kind = EVENTS.get(event, EventKind(event, ":bell:", True))
    subject = " ".join(
        part
        for part in (fields.get("model"), f"v{fields['version']}" if "version" in fields else None)
        if part
    )
    where = f" in {fields['env']}" if "env" in fields else ""
    headline = f"{kind.emoji} {kind.title}: {subject}{where}".rstrip(": ")
    ordered = [k for k in _FIRST if k in fields] + sorted(k for k in fields if k not in _FIRST)
    lines = [f"*{key}*: {_mrkdwn_value(fields[key])}" for key in ordered]
    return {
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            *(
                [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
                if lines
                else []
            ),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"event `{event}`"}]},
        ],
    }


def _mrkdwn_value(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return f"<{value}>"
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def notify(
    event: str,
    fields: Mapping[str, str],
    *,
    settings: NotifySettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Send one notification; True when the receiver took it. Never raises.

    Args:
        event: one of `EVENTS` (another name is sent with a generic title).
        fields: what to show (model, version, env, release, pr, run, ...).
        settings: defaults to `NotifySettings()` (the environment).
        sleep: the backoff's sleep (tests pass a recorder).
    """
    try:
        settings = settings or NotifySettings()
    except Exception as exc:  # a bad NOTIFY_* value must not fail the job either
        log.warning(
            "notification %s not sent: bad NOTIFY_ settings (%s)", event, type(exc).__name__
        )
        return False
    if settings.webhook_url is None:
        log.info("notification %s not sent: NOTIFY_WEBHOOK_URL is not set", event)
        return False
    url = settings.webhook_url.get_secret_value()
    if not url.startswith(("https://", "http://")):
        log.warning("notification %s not sent: NOTIFY_WEBHOOK_URL is not an http(s) URL", event)
        return False
    payload = build_payload(event, fields)
    wait = settings.backoff
    for attempt in range(1, settings.attempts + 1):
        try:
            webhook.post(url, payload, settings.timeout)
            return True
        except webhook.WebhookError as exc:  # the adapter's message never names the URL
            reason = str(exc)
            if attempt == settings.attempts or not exc.retryable:
                log.warning(
                    "notification %s not delivered after %d attempt(s): %s",
                    event,
                    attempt,
                    reason,
                )
                return False
            log.info("notification %s attempt %d failed (%s); retrying", event, attempt, reason)
            sleep(wait)
            wait *= 2
    return False


def drift_fields(summary: Mapping[str, Any]) -> dict[str, str]:
    """The fields of a drift or data-check notification, from its JSON summary."""
    fields = {
        "model": str(summary.get("model", "")),
        "version": str(summary.get("version", "")),
        "breaches": "; ".join(_breach_line(b) for b in summary.get("breaches", [])),
        "rows": str(summary.get("rows", {}).get("current", "")),
        "drift_share": f"{summary.get('drift', {}).get('share', 0):.2f}",
    }
    window = summary.get("window") or {}
    if window.get("first") and window.get("last"):
        fields["window"] = f"{window['first']} .. {window['last']}"
    if summary.get("report_url"):
        fields["run"] = str(summary["report_url"])
    return {k: v for k, v in fields.items() if v}


def _breach_line(breach: Mapping[str, Any]) -> str:
    named = f" ({', '.join(breach['features'])})" if breach.get("features") else ""
    return f"{breach['check']} {breach['value']:.3g} > {breach['threshold']:.3g}{named}"
