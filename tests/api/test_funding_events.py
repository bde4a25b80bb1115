"""Stripe's word on a settling charge through the webhook (SPEC §9): `processing` leaves the
campaign `funding_pending`; `payment_intent.succeeded` funds it, `payment_failed` sends it
back to awaiting funding; repeated events change nothing."""

from __future__ import annotations

import uuid

from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_stripe_webhooks import signed

SETTLING = {"payment_method": "pm_sepa_debit_processing"}


def intent_event(kind: str, intent: str, campaign_id: str) -> dict:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": kind,
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "metadata": {"campaign_id": campaign_id},
                "last_payment_error": {"message": "The bank account has insufficient funds."},
            }
        },
    }


async def settling_campaign(brand, creator) -> dict:
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
    )
    cid = created["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    return await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json=SETTLING))


async def deliver(api, event: dict) -> dict:
    payload, headers = signed(event)
    return await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))


async def test_payment_intent_succeeded_funds_a_settling_campaign_once(api, trio):
    brand, creator, _ = trio
    pending = await settling_campaign(brand, creator)
    cid = pending["id"]
    assert pending["status"] == "funding_pending" and pending["escrow"]["funded"] == 0
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    assert [(m["kind"], m["state"]) for m in ledger["items"]] == [("fund", "settling")]
    intent = ledger["items"][0]["rail_reference"]

    for _ in range(2):  # Stripe delivers twice, under two event ids
        handled = await deliver(api, intent_event("payment_intent.succeeded", intent, cid))
        assert handled["handled"] == cid
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["status"] == "active" and campaign["escrow"]["funded"] == 15_000
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    assert [(m["kind"], m["state"]) for m in ledger["items"]] == [("fund", "succeeded")]


async def test_payment_intent_payment_failed_returns_it_to_awaiting_funding(api, trio):
    brand, creator, _ = trio
    pending = await settling_campaign(brand, creator)
    cid = pending["id"]
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    intent = ledger["items"][0]["rail_reference"]
    await deliver(api, intent_event("payment_intent.payment_failed", intent, cid))
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["status"] == "awaiting_funding" and campaign["escrow"]["funded"] == 0
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    assert ledger["items"][0]["state"] == "failed"
    assert ledger["items"][0]["error"] == "The bank account has insufficient funds."
    funded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    assert funded["status"] == "active" and funded["escrow"]["funded"] == 15_000
