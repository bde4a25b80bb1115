"""Delivering notifications by email and signed webhook (SPEC §6).

Each notification row carries the state of its channels. A channel is sent, then marked
`sent` in its own commit, so a retry of this activity re-sends only what failed; a receiver
sees the same notification id again only when it did not acknowledge it. Retries (backoff
from the DeliverNotifications workflow) continue until the last attempt, which marks what
still fails as `failed`.

A webhook goes only to a public address (domain/webhook_targets.py): the URL is checked again
and its host resolved before each POST, every address checked, and the POST sent to the checked
address itself; redirects are not followed. A refused target marks the channel `failed` at once,
with the reason in `delivery_error`, and is not retried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import smtplib
import socket
import time
from collections.abc import Awaitable, Callable
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
from domain.webhook_targets import IPAddress, WebhookTargetRefused, check_addresses, check_url

WEBHOOK_TIMEOUT = 10.0
# Column prefixes of the per-channel states on Notification, in sending order.
CHANNELS = ("email", "webhook")


class DeliveryFailed(Exception):
    pass


class TargetRefused(DeliveryFailed):
    """The webhook URL, or an address its host resolves to, is not one Parley may call: the
    channel fails at once, without retries (domain/webhook_targets.py)."""


# host, port -> the addresses the host resolves to now.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
        WEBHOOK_TIMEOUT,
    )
    # IPv6 link-local answers carry a scope ("fe80::1%eth0"): refused either way.
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


class NotificationActivities:
    def __init__(self, settings, sessionmaker, resolver: Resolver = resolve) -> None:
        self.sessionmaker = sessionmaker
        self.smtp = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self.sender = settings.smtp_from
        self.allow_http = settings.webhook_allow_http
        self.allow_private = settings.webhook_allow_private
        self.resolver = resolver

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
        for notification, party in rows:
            errors: list[str] = []
            pending = [c for c in CHANNELS if getattr(notification, f"{c}_state") == PENDING]
            for index, channel in enumerate(pending):
                state = await _attempt(
                    self._send(channel, notification, party),
                    f"{notification.id} {channel}",
                    errors,
                    last_attempt,
                )
                # Saved before the next channel goes out: if this attempt dies midway, the
                # retry does not repeat what was already sent.
                await self._save(notification.id, channel, state, errors, first=index == 0)
                activity.heartbeat()  # many recipients may take long; a hung one does not
                if state == PENDING:  # a refused target is final: nothing to retry
                    failures.append(errors[-1])
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

    def _send(self, channel: str, notification: Notification, party: Party) -> Awaitable[None]:
        if channel == "email":
            # smtplib blocks; keep it off the worker's event loop.
            return asyncio.to_thread(self._send_email, notification, party)
        return self._post_webhook(notification, party)

    async def _post_webhook(self, notification: Notification, party: Party) -> None:
        """POSTs to an address checked just now, never to the name again (DNS rebinding)."""
        try:
            target = check_url(
                party.webhook_url or "",
                allow_http=self.allow_http,
                allow_private=self.allow_private,
            )
            addresses = [target.address] if target.address is not None else None
            if addresses is None:
                addresses = await self.resolver(target.host, target.port)
            address = check_addresses(addresses, allow_private=self.allow_private)
        except WebhookTargetRefused as refused:
            raise TargetRefused(f"webhook refused: {refused}") from None
        url = httpx.URL(party.webhook_url)
        # Pinned: the connection goes to `address`; the receiver still sees its own name in
        # Host, and TLS sends it as SNI and checks the certificate against it.
        named = target.scheme == "https" and target.address is None
        # A client of its own: a pooled connection to the same address, opened (and its
        # certificate checked) for another party's host name, is never reused for this one.
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as http:
            await _post_webhook(
                http,
                notification,
                party,
                url=url.copy_with(host=str(address)),
                host=url.netloc.decode("ascii"),
                extensions={"sni_hostname": target.host} if named else {},
            )

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
    """A channel's new state; a failure is noted, and final only on the last attempt (or when
    the webhook target is refused, which no retry would change)."""
    try:
        await send
        return SENT
    except TargetRefused as err:
        errors.append(f"{label}: {err}")
        return FAILED
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


async def _post_webhook(
    http: httpx.AsyncClient,
    notification: Notification,
    party: Party,
    *,
    url: httpx.URL,
    host: str,
    extensions: dict,
) -> None:
    body = json.dumps(webhook_payload(notification), separators=(",", ":")).encode()
    response = await http.post(
        url,
        content=body,
        headers={
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": "Parley-Webhooks/1",
            "Parley-Notification-Id": notification.id,
            "Parley-Signature": sign(party.webhook_secret or "", int(time.time()), body),
        },
        extensions=extensions,
        follow_redirects=False,
    )
    if 300 <= response.status_code < 400:
        raise DeliveryFailed(
            f"receiver answered {response.status_code} (redirects are not followed)"
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
