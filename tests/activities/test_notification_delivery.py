"""Notifications leave Parley by email (a real SMTP server, aiosmtpd) and as signed webhooks
(a local HTTP receiver), through the real API, worker and dev server (SPEC §6)."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
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

from db.models import Notification
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
    """The worker sends email through the test's SMTP server."""
    return settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{mailbox[1]}"})


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


async def test_webhook_verifies_with_the_readme_algorithm(api, make_party, hook):
    receiver, url = hook
    creator = await offer_campaign(make_party, webhook_url=url)
    secret = creator.webhook_secret
    [(headers, raw)] = await eventually(lambda: receiver.received)
    verify = readme_verify()
    assert verify(secret, headers["parley-signature"], raw)
    assert not verify("whsec_wrong", headers["parley-signature"], raw)
    assert not verify(secret, headers["parley-signature"], raw + b" ")
    payload = json.loads(raw)
    [notification] = await inbox(creator)
    assert payload["id"] == notification["id"] == headers["parley-notification-id"]
    assert payload["type"] == "campaign.created" and payload["party_id"] == creator.id
    assert payload["title"] == notification["title"]


async def test_a_receiver_failing_twice_gets_the_same_id_three_times(
    api, make_party, sessionmaker, hook
):
    receiver, url = hook
    receiver.statuses = [500, 503]
    creator = await offer_campaign(make_party, webhook_url=url)
    delivered = await eventually(
        lambda: _first_with(creator, lambda n: n["delivery"]["webhook"] == "sent")
    )
    ids = [json.loads(raw)["id"] for _, raw in receiver.received]
    assert ids == [delivered["id"]] * 3  # retried with backoff, nothing else
    async with sessionmaker() as session:
        row = (
            await session.exec(select(Notification).where(Notification.id == delivered["id"]))
        ).one()
    assert row.delivery_attempts == 3 and row.delivery_error is None


async def _first_with(party, predicate):
    return next((n for n in await inbox(party) if predicate(n)), None)
