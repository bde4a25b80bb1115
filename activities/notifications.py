"""Delivering notifications by email and signed webhook (SPEC §6).

Each notification row carries the state of its channels. A channel is sent, then marked
`sent` in its own commit, so a retry of this activity re-sends only what failed; a receiver
sees the same notification id again only when it did not acknowledge it. Retries (backoff
from the DeliverNotifications workflow) continue until the last attempt, which marks what
still fails as `failed`.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
from collections.abc import Awaitable
from email.message import EmailMessage

import httpx
from sqlalchemy import or_, update
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.models import Notification, Party, as_utc
from domain.contract import rfc3339
from domain.notifications import (
    DELIVER_NOTIFICATIONS,
    FAILED,
    MAX_DELIVERY_ATTEMPTS,
    PENDING,
    SENT,
    parse_smtp_url,
    sign,
)

WEBHOOK_TIMEOUT = 10.0
# Column prefixes of the per-channel states on Notification, in sending order.
CHANNELS = ("email", "webhook")


class DeliveryFailed(Exception):
    pass


class NotificationActivities:
    def __init__(self, settings, sessionmaker) -> None:
        self.sessionmaker = sessionmaker
        self.smtp = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self.sender = settings.smtp_from

    @activity.defn(name=DELIVER_NOTIFICATIONS)
    async def deliver_notifications(self, event_key: str) -> None:
        async with self.sessionmaker() as session:
            rows = (
                await session.exec(
                    select(Notification, Party)
                    .join(Party, Party.id == Notification.party_id)
                    .where(
                        Notification.event_key == event_key,
                        or_(
                            Notification.email_state == PENDING,
                            Notification.webhook_state == PENDING,
                        ),
                    )
                    .order_by(Notification.seq)
                )
            ).all()
        last_attempt = activity.info().attempt >= MAX_DELIVERY_ATTEMPTS
        failures: list[str] = []
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as http:
            for notification, party in rows:
                errors: list[str] = []
                pending = [c for c in CHANNELS if getattr(notification, f"{c}_state") == PENDING]
                for index, channel in enumerate(pending):
                    state = await _attempt(
                        self._send(channel, http, notification, party),
                        f"{notification.id} {channel}",
                        errors,
                        last_attempt,
                    )
                    # Saved before the next channel goes out: if this attempt dies midway, the
                    # retry does not repeat what was already sent.
                    await self._save(notification.id, channel, state, errors, first=index == 0)
                    activity.heartbeat()  # many recipients may take long; a hung one does not
                failures += errors
        if failures and not last_attempt:
            raise ApplicationError("delivery failed: " + "; ".join(failures))

    async def _save(
        self, notification_id: str, channel: str, state: str, errors: list[str], first: bool
    ) -> None:
        """A channel's new state; the attempt is counted once per notification."""
        async with self.sessionmaker() as session:
            await session.exec(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(
                    delivery_attempts=Notification.delivery_attempts + (1 if first else 0),
                    delivery_error="; ".join(errors) or None,
                    **{f"{channel}_state": state},
                )
            )
            await session.commit()

    def _send(
        self, channel: str, http: httpx.AsyncClient, notification: Notification, party: Party
    ) -> Awaitable[None]:
        if channel == "email":
            # smtplib blocks; keep it off the worker's event loop.
            return asyncio.to_thread(self._send_email, notification, party)
        return _post_webhook(http, notification, party)

    def _send_email(self, notification: Notification, party: Party) -> None:
        if self.smtp is None:
            raise DeliveryFailed("PARLEY_SMTP_URL is not set")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = party.email
        message["Subject"] = notification.title
        # Mail clients drop a second copy of the same Message-ID.
        message["Message-ID"] = f"<{notification.id}@parley>"
        message.set_content(_email_text(notification))
        server = self.smtp
        connect = smtplib.SMTP_SSL if server.tls else smtplib.SMTP
        with connect(server.host, server.port, timeout=WEBHOOK_TIMEOUT) as smtp:
            if server.starttls:
                smtp.starttls()
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)


async def _attempt(send: Awaitable[None], label: str, errors: list[str], last: bool) -> str:
    """A channel's new state; a failure is noted, and final only on the last attempt."""
    try:
        await send
        return SENT
    except (OSError, smtplib.SMTPException, httpx.HTTPError, DeliveryFailed) as err:
        errors.append(f"{label}: {err or type(err).__name__}")
        return FAILED if last else PENDING


def webhook_payload(notification: Notification) -> dict:
    return {
        "id": notification.id,
        "type": notification.kind,
        "created_at": rfc3339(as_utc(notification.created_at)),
        "party_id": notification.party_id,
        "campaign_id": notification.campaign_id,
        "dispute_id": notification.dispute_id,
        "title": notification.title,
        "data": notification.data,
    }


async def _post_webhook(http: httpx.AsyncClient, notification: Notification, party: Party) -> None:
    body = json.dumps(webhook_payload(notification), separators=(",", ":")).encode()
    response = await http.post(
        party.webhook_url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Parley-Webhooks/1",
            "Parley-Notification-Id": notification.id,
            "Parley-Signature": sign(party.webhook_secret or "", int(time.time()), body),
        },
    )
    if not response.is_success:
        raise DeliveryFailed(f"receiver answered {response.status_code}")


def _email_text(notification: Notification) -> str:
    lines = [notification.title, ""]
    if notification.body:
        lines += [notification.body, ""]
    if notification.campaign_id:
        lines.append(f"Campaign: {notification.campaign_id}")
    if notification.dispute_id:
        lines.append(f"Dispute: {notification.dispute_id}")
    lines += ["", json.dumps(notification.data, indent=2, sort_keys=True)]
    return "\n".join(lines)
