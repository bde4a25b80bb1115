"""POST /v1/webhooks/stripe (SPEC §7): signatures, deduplication, freezing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

from sqlmodel import select

from db.models import LedgerEntry
from tests.api.test_campaigns import create_and_fund, ok
from tests.api.test_parties import assert_problem
from tests.conftest import STRIPE_WEBHOOK_SECRET


def signed(event: dict, secret: str = STRIPE_WEBHOOK_SECRET, at: int | None = None):
    """Signs as Stripe does: v1 = HMAC-SHA256(secret, "{t}.{payload}")."""
    payload = json.dumps(event).encode()
    t = at if at is not None else int(time.time())
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={t},v1={v1}", "Content-Type": "application/json"}


def dispute_event(kind: str, payment_intent: str, dispute_id: str | None = None, **fields) -> dict:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": kind,
        "data": {
            "object": {
                "id": dispute_id or "dp_" + uuid.uuid4().hex[:10],
                "object": "dispute",
                "payment_intent": payment_intent,
                "reason": "fraudulent",
                "status": "needs_response" if kind.endswith("created") else "won",
                **fields,
            }
        },
    }


async def funding_reference(sessionmaker, campaign_id: str) -> str:
    async with sessionmaker() as session:
        query = select(LedgerEntry).where(
            LedgerEntry.campaign_id == campaign_id, LedgerEntry.kind == "fund"
        )
        return (await session.exec(query)).one().rail_reference


async def test_bad_or_stale_signatures_are_rejected(api):
    event = dispute_event("charge.dispute.created", "pi_x")
    payload, headers = signed(event, secret="whsec_wrong")
    assert_problem(
        await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers),
        400,
        "invalid_signature",
    )
    payload, headers = signed(event, at=int(time.time()) - 301)
    assert_problem(
        await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers),
        400,
        "invalid_signature",
    )
    assert_problem(
        await api.http.post("/v1/webhooks/stripe", content=payload), 400, "invalid_signature"
    )


async def test_charge_dispute_freezes_until_closed(api, trio, sessionmaker, make_party):  # noqa: F811
    brand, creator, _ = trio
    mediator = await make_party("mediator")
    campaign = await create_and_fund(brand, creator)
    cid = campaign["id"]
    reference = await funding_reference(sessionmaker, cid)

    created = dispute_event("charge.dispute.created", reference, "dp_1")
    payload, headers = signed(created)
    first = await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))
    assert first == {"received": True, "duplicate": False, "handled": cid}
    frozen = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert frozen["status"] == "frozen" and frozen["frozen"] is True

    # Stripe redelivers: handled once.
    again = await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))
    assert again == {"received": True, "duplicate": True, "handled": None}
    timeline = await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline"))
    assert [e["type"] for e in timeline["items"]].count("campaign.frozen") == 1

    inbox = await ok(await mediator.client.get("/v1/notifications"))
    assert [n["type"] for n in inbox["items"]] == ["campaign.frozen"]

    work = {"url": "https://x.io/1"}
    assert_problem(
        await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work),
        409,
        "invalid_state",
    )

    payload, headers = signed(dispute_event("charge.dispute.closed", reference, "dp_1"))
    await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))
    thawed = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert thawed["status"] == "active" and thawed["frozen"] is False
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work))


async def test_unknown_charge_is_acknowledged_and_ignored(api):
    payload, headers = signed(dispute_event("charge.dispute.created", "pi_unknown"))
    body = await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))
    assert body == {"received": True, "duplicate": False, "handled": None}
