"""Outbound notifications (SPEC §6): the webhook signature, the delivery schedule, SMTP URLs."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

DELIVER_WORKFLOW = "DeliverNotifications"
DELIVER_NOTIFICATIONS = "deliver_notifications"
# Backoff 1 s, 2 s, 4 s … capped at an hour: 30 attempts span about a day.
FIRST_RETRY = timedelta(seconds=1)
LONGEST_RETRY = timedelta(hours=1)
MAX_DELIVERY_ATTEMPTS = 30

# A channel's state on a notification row; None when the channel does not apply.
PENDING, SENT, FAILED = "pending", "sent", "failed"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`Parley-Signature`: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def delivery_workflow_id(event_key: str) -> str:
    """One delivery per recorded event (`{source}:{seq}`), whoever it notifies."""
    return "deliver-" + event_key.replace(":", "-")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool = False  # smtps://: TLS from the first byte
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpServer:
    """`smtp://[user:pass@]host[:port][?starttls=1]` or `smtps://…` (PARLEY_SMTP_URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"PARLEY_SMTP_URL must be smtp://host[:port] or smtps://…, got {url!r}")
    tls = parts.scheme == "smtps"
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
