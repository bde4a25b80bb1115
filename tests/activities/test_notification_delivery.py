"""Notifications leave Parley by email (a real SMTP server, aiosmtpd) and as signed webhooks
(a local HTTP receiver), through the real API, worker and dev server (SPEC §6)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import inspect
import json
import re
import time
import uuid
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from db.models import Notification, Party
from domain.notifications import MAX_DELIVERY_ATTEMPTS
from tests.api.test_campaigns import campaign_body, ok
from tests.conftest import free_port, serve

# Long windows: the only notification in these tests is the creator's "campaign.created".
QUIET = {"acceptance_window": "P3D"}


async def eventually(check, timeout: float = 20):
    """Polls until `check()` (plain or async) returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


class Mailbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(
            (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default))
        )
        return "250 OK"


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def settings(settings, mailbox):
    """The worker sends email through the test's SMTP server, and webhooks to the test's
    receiver on http://127.0.0.1 (allowed for tests only: tests/api/test_webhook_ssrf.py)."""
    return settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{mailbox[1]}",
            "webhook_allow_http": True,
            "webhook_allow_private": True,
        }
    )


class Receiver:
    """A webhook endpoint answering scripted statuses (then 200), keeping what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict, bytes]] = []

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def hook():
    """A running receiver and its URL."""
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async for base_url in serve(app):
        yield receiver, f"{base_url}/hook"


async def inbox(party) -> list[dict]:
    return (await ok(await party.client.get("/v1/notifications")))["items"]


async def offer_campaign(make_party, **creator_extra):
    brand = await make_party("brand")
    creator = await make_party("creator", email="maya@creators.example", **creator_extra)
    body = campaign_body(creator.id, **QUIET)
    await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    return creator


def readme_verify():
    """The receiver's check exactly as the README gives it: its Python block, run as is."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify" in b]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 (our own README)
    return scope["verify"]


async def test_email_reaches_the_recipient_with_the_notification_as_subject(
    api, make_party, mailbox
):
    box, _ = mailbox
    creator = await offer_campaign(make_party)
    [(recipients, message)] = await eventually(lambda: box.messages)
    [notification] = await inbox(creator)
    assert recipients == ["maya@creators.example"]
    assert message["To"] == "maya@creators.example"
    assert message["Subject"] == notification["title"]
    assert notification["title"].startswith("New campaign offer")
    assert message["Message-ID"] == f"<{notification['id']}@parley>"
    sent = await eventually(
        lambda: _first_with(creator, lambda n: n["delivery"]["email"] == "sent")
    )
    assert sent["delivery"] == {"email": "sent", "webhook": None}


def hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """SPEC §6's signature written out here, independently of Parley's `sign`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


async def test_webhook_is_signed_as_the_readme_says(api, make_party, hook):
    receiver, url = hook
    creator = await offer_campaign(make_party, webhook_url=url)
    secret = creator.webhook_secret
    [(headers, raw)] = await eventually(lambda: receiver.received)
    header = headers["parley-signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert set(fields) == {"t", "v1"}
    assert hmac.compare_digest(fields["v1"], hmac_hex(secret, fields["t"], raw))
    assert abs(time.time() - int(fields["t"])) < 60  # signed when sent
    assert headers["content-type"] == "application/json"

    verify = readme_verify()
    assert verify(secret, header, raw)
    assert not verify("whsec_wrong", header, raw)
    assert not verify(secret, header, raw + b" ")
    for age, accepted in ((200, True), (400, False)):  # the README's 300 s tolerance
        then = int(time.time()) - age
        assert verify(secret, f"t={then},v1={hmac_hex(secret, then, raw)}", raw) is accepted

    payload = json.loads(raw)
    assert raw == json.dumps(payload, separators=(",", ":")).encode()  # compact, as signed
    [notification] = await inbox(creator)
    assert headers["parley-notification-id"] == notification["id"]
    assert datetime.fromisoformat(payload["created_at"]).tzinfo is not None  # RFC 3339
    assert payload == {
        "id": notification["id"],
        "type": "campaign.created",
        "created_at": notification["created_at"],
        "party_id": creator.id,
        "campaign_id": notification["campaign_id"],
        "dispute_id": None,
        "title": notification["title"],
        "data": notification["data"],
    }
    assert payload["campaign_id"].startswith("cmp_")


async def test_a_receiver_failing_twice_gets_the_same_id_three_times(
    api, make_party, sessionmaker, mailbox, hook
):
    box, _ = mailbox
    receiver, url = hook
    receiver.statuses = [500, 503]
    creator = await offer_campaign(make_party, webhook_url=url)
    delivered = await eventually(
        lambda: _first_with(creator, lambda n: n["delivery"]["webhook"] == "sent")
    )
    ids = [json.loads(raw)["id"] for _, raw in receiver.received]
    assert ids == [delivered["id"]] * 3  # retried with backoff, nothing else
    # The email went out on the first attempt and was not repeated with the webhook.
    assert delivered["delivery"] == {"email": "sent", "webhook": "sent"}
    assert [m["Message-ID"] for _, m in box.messages] == [f"<{delivered['id']}@parley>"]
    async with sessionmaker() as session:
        row = (
            await session.exec(select(Notification).where(Notification.id == delivered["id"]))
        ).one()
    assert row.delivery_attempts == 3 and row.delivery_error is None


async def test_the_last_attempt_gives_up_on_what_still_fails(settings, sessionmaker, mailbox, hook):
    """The activity itself, as attempt 1 and as the last attempt (30 retries are a day)."""
    box, _ = mailbox
    receiver, url = hook
    receiver.statuses = [500, 502]
    party_id, event_key = f"crt_{uuid.uuid4().hex[:12]}", f"cmp_{uuid.uuid4().hex[:12]}:1"
    async with sessionmaker() as session:
        session.add(
            Party(
                id=party_id,
                name="Maya",
                role="creator",
                email="maya@creators.example",
                webhook_url=url,
                webhook_secret="whsec_test",
                api_key_hash=uuid.uuid4().hex,
            )
        )
        session.add(
            Notification(
                id=f"ntf_{uuid.uuid4().hex[:16]}",
                event_key=event_key,
                party_id=party_id,
                kind="campaign.created",
                title="New campaign offer",
                email_state="pending",
                webhook_state="pending",
            )
        )
        await session.commit()

    async def row() -> Notification:
        async with sessionmaker() as session:
            query = select(Notification).where(Notification.event_key == event_key)
            return (await session.exec(query)).one()

    deliver = NotificationActivities(settings, sessionmaker).deliver_notifications
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError, match="webhook: receiver answered 500") as raised:
        await env.run(deliver, event_key)
    assert not raised.value.non_retryable
    first = await row()
    assert (first.email_state, first.webhook_state, first.delivery_attempts) == (
        "sent",
        "pending",
        1,
    )

    env.info = dataclasses.replace(env.info, attempt=MAX_DELIVERY_ATTEMPTS)
    await env.run(deliver, event_key)  # returns: nothing left to retry
    last = await row()
    assert (last.email_state, last.webhook_state, last.delivery_attempts) == ("sent", "failed", 2)
    assert "receiver answered 502" in last.delivery_error
    assert len(box.messages) == 1 and len(receiver.received) == 2


async def _first_with(party, predicate):
    return next((n for n in await inbox(party) if predicate(n)), None)
