"""A party's webhook URL cannot point Parley's worker at itself or the private network
(issue #9 item 9): refused at registration, and checked again, address by address, at
delivery, which then connects to the address it checked and follows no redirect."""

from __future__ import annotations

import ipaddress
import uuid

import httpx
import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities, resolve
from api.main import create_app
from db.models import Notification
from domain.webhook_targets import WebhookTargetRefused, check_addresses
from tests.api.test_parties import assert_problem
from tests.conftest import ADMIN_TOKEN, serve

DEV = {"webhook_allow_http": True, "webhook_allow_private": True}


def party_body(url: str) -> dict:
    return {"name": "B", "role": "brand", "email": "b@x.io", "webhook_url": url}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "https://169.254.169.254/",
        "https://2130706433/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0x7f.1/",
        "https://10.0.0.5/hooks",
        "https://localhost/hooks",
        "https://user:pw@hooks.example.com/",
        "http://hooks.example.com/",
    ],
)
async def test_registration_refuses_internal_targets(api, url):
    response = await api.http.post("/v1/parties", json=party_body(url))
    body = assert_problem(response, 422, "validation_error")
    assert body["detail"].startswith("body.webhook_url: The webhook")
    assert body["errors"][0]["loc"] == ["body", "webhook_url"]


async def test_the_refusal_says_why(api):
    response = await api.http.post("/v1/parties", json=party_body("https://2130706433/"))
    detail = assert_problem(response, 422, "validation_error")["detail"]
    assert detail == "body.webhook_url: The webhook address 127.0.0.1 is loopback, not public."


async def test_public_https_is_registered(api):
    response = await api.http.post(
        "/v1/parties", json=party_body("https://hooks.example.com:8443/parley")
    )
    assert response.status_code == 201, response.text


class Receiver:
    """A webhook endpoint answering one status, keeping the Host header of each request."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.hosts: list[str] = []
        self.followed = 0

    async def hook(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        headers = {"Location": "/elsewhere"} if 300 <= self.status < 400 else None
        return Response(status_code=self.status, headers=headers)

    async def elsewhere(self, request: Request) -> Response:
        self.followed += 1
        return Response(status_code=200)


@pytest.fixture
async def receiver():
    """A receiver on 127.0.0.1 and its port."""
    receiver = Receiver()
    app = Starlette(
        routes=[
            Route("/hook", receiver.hook, methods=["POST"]),
            Route("/elsewhere", receiver.elsewhere, methods=["POST", "GET"]),
        ]
    )
    async for base_url in serve(app):
        yield receiver, int(base_url.rsplit(":", 1)[1])


@pytest.fixture
async def dev_api(temporal_env, settings):
    """The API as development runs it: http and private webhook targets allowed."""
    app = create_app(settings.model_copy(update=DEV), temporal=temporal_env.client)
    async for base_url in serve(app):
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        ) as http:
            yield http


async def register(dev_api: httpx.AsyncClient, url: str) -> str:
    response = await dev_api.post("/v1/parties", json=party_body(url))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def notify(sessionmaker, party_id: str) -> str:
    """A pending webhook notification for the party (no email), and its event key."""
    event_key = f"cmp_{uuid.uuid4().hex[:12]}:1"
    async with sessionmaker() as session:
        session.add(
            Notification(
                id=f"ntf_{uuid.uuid4().hex[:16]}",
                event_key=event_key,
                party_id=party_id,
                kind="campaign.created",
                title="New campaign offer",
                webhook_state="pending",
            )
        )
        await session.commit()
    return event_key


async def row(sessionmaker, event_key: str) -> Notification:
    async with sessionmaker() as session:
        query = select(Notification).where(Notification.event_key == event_key)
        return (await session.exec(query)).one()


async def run_delivery(settings, sessionmaker, event_key, resolver=None, **flags) -> None:
    kwargs = {"resolver": resolver} if resolver else {}
    activities = NotificationActivities(settings.model_copy(update=flags), sessionmaker, **kwargs)
    await ActivityEnvironment().run(activities.deliver_notifications, event_key)


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    dev_api, settings, sessionmaker, receiver
):
    """Registered while development allowed it; delivered by a worker that does not allow
    private targets: the channel fails at once, says why, and is not retried."""
    hook, port = receiver
    party_id = await register(dev_api, f"http://localhost:{port}/hook")
    event_key = await notify(sessionmaker, party_id)

    await run_delivery(settings, sessionmaker, event_key, webhook_allow_http=True)  # no raise

    refused = await row(sessionmaker, event_key)
    assert refused.webhook_state == "failed" and refused.delivery_attempts == 1
    assert refused.delivery_error.endswith(
        "webhook refused: The webhook host localhost is this machine, not a public address."
    )
    assert hook.hosts == []  # nothing was sent


async def test_the_worker_resolves_names_and_refuses_loopback_answers():
    """The real resolver (asyncio getaddrinfo) on a name that resolves to this machine: every
    answer is loopback, and each one is refused."""
    answers = await resolve("localhost", 443)
    assert answers and all(a.is_loopback for a in answers)
    for answer in answers:
        with pytest.raises(WebhookTargetRefused, match="loopback"):
            check_addresses([answer])


async def test_a_public_name_resolving_to_loopback_is_refused_at_delivery(
    dev_api, settings, sessionmaker, receiver
):
    hook, port = receiver
    party_id = await register(dev_api, f"https://hooks.example.com:{port}/hook")
    event_key = await notify(sessionmaker, party_id)

    async def to_loopback(host, port):
        return [ipaddress.ip_address("127.0.0.1")]

    await run_delivery(settings, sessionmaker, event_key, to_loopback)
    refused = await row(sessionmaker, event_key)
    assert refused.webhook_state == "failed"
    assert "The webhook address 127.0.0.1 is loopback, not public." in refused.delivery_error
    assert hook.hosts == []


async def test_one_private_address_among_the_answers_refuses_the_delivery(
    dev_api, settings, sessionmaker, receiver
):
    """DNS rebinding: a name checked (or public) at registration resolves, at delivery, to a
    public and a private address; the check is at delivery, on every address."""
    hook, port = receiver
    party_id = await register(dev_api, f"https://hooks.example.com:{port}/hook")
    event_key = await notify(sessionmaker, party_id)

    async def rebinding(host, port):
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.1")]

    await run_delivery(settings, sessionmaker, event_key, rebinding)
    refused = await row(sessionmaker, event_key)
    assert refused.webhook_state == "failed"
    assert "127.0.0.1 is loopback" in refused.delivery_error
    assert hook.hosts == []


async def test_delivery_connects_to_the_checked_address_with_the_registered_host(
    dev_api, settings, sessionmaker, receiver
):
    """Pinning: the POST goes to the address the check saw (the name is not looked up
    again), and the receiver still sees its own name in Host."""
    hook, port = receiver
    party_id = await register(dev_api, f"http://hooks.example.com:{port}/hook")
    event_key = await notify(sessionmaker, party_id)
    looked_up: list[str] = []

    async def resolver(host, port):
        looked_up.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    await run_delivery(settings, sessionmaker, event_key, resolver, **DEV)
    assert (await row(sessionmaker, event_key)).webhook_state == "sent"
    assert looked_up == ["hooks.example.com"]
    assert hook.hosts == [f"hooks.example.com:{port}"]


async def test_a_redirect_is_a_failed_delivery_and_is_not_followed(
    dev_api, settings, sessionmaker, receiver
):
    hook, port = receiver
    hook.status = 302
    party_id = await register(dev_api, f"http://127.0.0.1:{port}/hook")
    event_key = await notify(sessionmaker, party_id)

    with pytest.raises(ApplicationError, match="redirects are not followed") as raised:
        await run_delivery(settings, sessionmaker, event_key, **DEV)
    assert not raised.value.non_retryable  # a receiver's answer; it may be fixed
    assert len(hook.hosts) == 1 and hook.followed == 0
    assert (await row(sessionmaker, event_key)).webhook_state == "pending"
