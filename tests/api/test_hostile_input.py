"""Hostile input that once answered 500 or exhausted the API (issue #9 items 5, 6, 7 and 10):
each is now a clear problem+json answer that changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import time

import httpx
import pytest

from api.main import create_app
from config import Settings
from tests.api.test_campaigns import campaign_body, create_and_fund, ok
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem
from tests.api.test_readiness import start_dev_server
from tests.api.test_stripe_webhooks import signed
from tests.conftest import STRIPE_WEBHOOK_SECRET, free_port, serve, wait_for_port

# --- request bodies ------------------------------------------------------------------------


async def test_an_oversized_body_is_refused_before_it_is_read(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator")
    body = campaign_body(creator.id)
    body["brief"] = "x" * (50 * 1024 * 1024)
    response = await brand.client.post("/v1/campaigns", json=body)
    assert_problem(response, 413, "payload_too_large")

    async def chunks():  # no Content-Length: the cap counts the bytes as they arrive
        yield b'{"title": "'
        for _ in range(50):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = await brand.client.post(
        "/v1/campaigns", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    assert (await ok(await brand.client.get("/v1/campaigns")))["items"] == []


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Nested within what Python's JSON parser takes, it is a validation error; beyond that, a body
# that cannot be parsed.
@pytest.mark.parametrize(
    ("depth", "status", "code"), [(200, 422, "validation_error"), (5_000, 400, "bad_request")]
)
async def test_deeply_nested_json_is_refused(api, make_party, depth, status, code):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_c")
    body = json.dumps(campaign_body(creator.id)).replace('"Spring launch"', nested(depth))
    response = await brand.client.post(
        "/v1/campaigns", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, status, code)
    cid = (await create_and_fund(brand, creator))["id"]
    submission = '{"url": "https://x.example/p", "metrics": {"a": ' + nested(depth) + "}}"
    response = await creator.client.post(
        f"/v1/campaigns/{cid}/deliverables/0/submit",
        content=submission,
        headers={"content-type": "application/json"},
    )
    assert_problem(response, status, code)
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["deliverables"][0]["status"] == "pending"


# --- cursors -------------------------------------------------------------------------------


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CRAFTED_CURSORS = [
    "W10",  # base64 of []
    b64([]),
    b64(["not a date", "x"]),
    b64([10**30]),
    b64([True]),
    b64([None, None]),
    b64(["2026-01-01T00:00:00+00:00"]),
    b64([{"a": 1}]),
    b64(["x"] * 5),
    "!!!",
    "e30",  # {}
]


async def test_crafted_cursors_are_422_on_every_list(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_c")
    cid = (await create_and_fund(brand, creator))["id"]
    await file(brand, cid)
    lists = [
        "/v1/campaigns",
        "/v1/disputes",
        f"/v1/campaigns/{cid}/messages",
        f"/v1/campaigns/{cid}/timeline",
        "/v1/notifications",
    ]
    for path in lists:
        for cursor in CRAFTED_CURSORS:
            response = await brand.client.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, cursor, response.text)
            assert_problem(response, 422, "validation_error")
    agencies = "/v1/parties/me/agency-grants"
    assert_problem(
        await brand.client.get(agencies, params={"cursor": "W10"}), 422, "validation_error"
    )


# --- admin token on mediator actions --------------------------------------------------------


async def test_the_admin_token_on_a_mediator_action_is_403(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_c")
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]
    split = {"release_to_creator": 0, "refund_to_brand": 15_000}
    bodies = {
        "request-evidence": {"from_side": "creator", "note": "the post, please"},
        "proposal": {"split": split, "rationale": "r"},
        "ruling": {"split": split, "rationale": "r"},
    }
    for action, body in bodies.items():
        response = await api.http.post(f"/v1/disputes/{did}/{action}", json=body)
        assert_problem(response, 403, "forbidden")


# --- Stripe events ----------------------------------------------------------------------------


async def test_stripe_signatures_dated_in_the_future_are_refused(api):
    event = {"id": "evt_future", "type": "charge.dispute.created", "data": {"object": {}}}
    payload, headers = signed(event, at=int(time.time()) + 3_600)
    response = await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert_problem(response, 400, "invalid_signature")


MALFORMED_EVENTS = [
    b"[]",
    b'"event"',
    b"{}",
    b'{"id": "evt_1"}',
    b'{"id": 5, "type": "charge.dispute.created", "data": {"object": {}}}',
    b'{"id": "evt_2", "type": "charge.dispute.created"}',
    b'{"id": "evt_3", "type": "charge.dispute.created", "data": []}',
    b'{"id": "evt_4", "type": "charge.dispute.created", "data": {"object": "x"}}',
    b'{"id": "evt_5", "type": "charge.dispute.created", "data": {"object": {"payment_intent": 7}}}',
    b'{"id": "evt_6", "type": ["x"], "data": {"object": {}}}',
]


def signed_raw(payload: bytes) -> dict[str, str]:
    t = int(time.time())
    v1 = hmac.new(STRIPE_WEBHOOK_SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return {"Stripe-Signature": f"t={t},v1={v1.hexdigest()}", "Content-Type": "application/json"}


@pytest.mark.parametrize("payload", MALFORMED_EVENTS)
async def test_signed_but_malformed_stripe_events_are_400(api, payload):
    response = await api.http.post(
        "/v1/webhooks/stripe", content=payload, headers=signed_raw(payload)
    )
    assert_problem(response, 400, "invalid_event")


# --- Temporal hung ----------------------------------------------------------------------------


async def test_a_hung_temporal_is_a_503_within_seconds(tmp_path, database_url, make_party, api):
    """SIGSTOP leaves Temporal's socket open and silent: nothing answers, nothing refuses."""
    port = free_port()
    server = start_dev_server(port, tmp_path / "temporal.db")
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_port=port,
        admin_token="hung-admin",
        temporal_rpc_timeout_seconds=3,
    )
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_c")
    cid = (await create_and_fund(brand, creator))["id"]  # on the suite's Temporal
    did = (await file(brand, cid))["id"]
    try:
        await wait_for_port(port)
        async for base_url in serve(create_app(settings)):
            os.kill(server.pid, signal.SIGSTOP)
            try:
                headers = {"Authorization": f"Bearer {brand.api_key}"}
                async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as c:
                    requests = [
                        c.post("/v1/campaigns", json=campaign_body(creator.id)),
                        c.post(f"/v1/campaigns/{cid}/cancel", json={}),
                        c.get(f"/v1/disputes/{did}"),
                    ]
                    for request in requests:
                        started = time.monotonic()
                        response = await request
                        took = time.monotonic() - started
                        assert response.status_code == 503, response.text
                        assert response.headers["content-type"].startswith("application/problem")
                        assert response.headers["retry-after"]
                        assert took < 10, f"answered after {took:.1f} s"
            finally:
                os.kill(server.pid, signal.SIGCONT)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_an_evidence_description_is_capped_in_json_and_multipart(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_c")
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]
    long = "d" * 2_000_000
    body = {"kind": "link", "url": "https://x.example/p", "description": long}
    response = await brand.client.post(f"/v1/disputes/{did}/evidence", json=body)
    assert_problem(response, 413, "payload_too_large")
    body["description"] = "d" * 2_001
    response = await brand.client.post(f"/v1/disputes/{did}/evidence", json=body)
    assert_problem(response, 422, "validation_error")
    response = await brand.client.post(
        f"/v1/disputes/{did}/evidence",
        files={"file": ("note.txt", b"plain words", "text/plain")},
        data={"description": "d" * 2_001},
    )
    assert_problem(response, 422, "validation_error")
    dispute = await ok(await brand.client.get(f"/v1/disputes/{did}"))
    assert dispute["evidence"] == []


async def test_nul_characters_are_refused_before_they_reach_the_database(api, make_party):
    """PostgreSQL text cannot hold U+0000: found by schemathesis as a 500 on POST /v1/parties."""
    body = {"name": "a\u0000b", "role": "brand", "email": "b@example.com"}
    assert_problem(await api.http.post("/v1/parties", json=body), 422, "validation_error")
    brand = await make_party("brand")
    creator = await make_party("creator")
    created = campaign_body(creator.id)
    created["brief"] = "nul \u0000 here"
    assert_problem(await brand.client.post("/v1/campaigns", json=created), 422, "validation_error")
    assert (await ok(await brand.client.get("/v1/campaigns")))["items"] == []
    literal = campaign_body(creator.id)
    literal["brief"] = "a literal \\u0000 is text"
    await ok(await brand.client.post("/v1/campaigns", json=literal), 201)
    response = await api.http.get("/v1/ledger", params={"campaign_id": "x\u0000"})
    assert_problem(response, 422, "validation_error")
