"""Card disputes on the funding charge (issue #10 item 4, SPEC §9): each its own hold, in
any order and any number of times; a lost one is a chargeback in the ledger and the escrow."""

from __future__ import annotations

from tests.api.test_campaigns import WORK, create_and_fund, ok, until
from tests.api.test_stripe_webhooks import dispute_event, funding_reference, signed


async def deliver(api, event: dict) -> dict:
    payload, headers = signed(event)
    return await ok(await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers))


async def test_closed_before_created_leaves_no_hold(api, trio, sessionmaker):
    brand, creator, _ = trio
    cid = (await create_and_fund(brand, creator))["id"]
    pi = await funding_reference(sessionmaker, cid)
    await deliver(api, dispute_event("charge.dispute.closed", pi, "dp_late", status="won"))
    await deliver(api, dispute_event("charge.dispute.created", pi, "dp_late"))
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["status"] == "active" and campaign["frozen"] is False
    assert campaign["card_disputes"] == {"dp_late": "won"}


async def test_the_admins_hold_and_a_card_disputes_hold_lift_separately(api, trio, sessionmaker):
    brand, creator, _ = trio
    cid = (await create_and_fund(brand, creator))["id"]
    pi = await funding_reference(sessionmaker, cid)
    await ok(await api.http.post(f"/v1/campaigns/{cid}/freeze", json={"reason": "KYC review"}))
    await deliver(api, dispute_event("charge.dispute.created", pi, "dp_a"))
    await deliver(api, dispute_event("charge.dispute.closed", pi, "dp_a", status="won"))
    still = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert still["frozen"] is True and list(still["holds"]) == ["admin"]

    await deliver(api, dispute_event("charge.dispute.created", pi, "dp_b"))
    await ok(await api.http.post(f"/v1/campaigns/{cid}/unfreeze"))
    still = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert still["frozen"] is True and list(still["holds"]) == ["card:dp_b"]

    await deliver(api, dispute_event("charge.dispute.closed", pi, "dp_b", status="won"))
    free = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert free["status"] == "active" and free["holds"] == {}


async def test_a_lost_card_dispute_is_a_chargeback_once(api, trio, sessionmaker):
    brand, creator, _ = trio
    cid = (await create_and_fund(brand, creator))["id"]  # 10,000 + 5,000
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=WORK))
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"))
    await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released")
    pi = await funding_reference(sessionmaker, cid)

    await deliver(api, dispute_event("charge.dispute.created", pi, "dp_x", amount=15_000))
    lost = dispute_event("charge.dispute.closed", pi, "dp_x", status="lost", amount=15_000)
    await deliver(api, lost)
    await deliver(api, {**lost, "id": lost["id"] + "_again"})  # a second delivery
    campaign = await until(brand.client, cid, lambda c: c["status"] == "completed")
    escrow = campaign["escrow"]
    assert escrow["held"] == 0 and escrow["charged_back"] == 5_000  # what escrow still held
    assert escrow["funded"] == sum(v for k, v in escrow.items() if k != "funded")
    assert [d["status"] for d in campaign["deliverables"]] == ["released", "charged_back"]

    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    chargebacks = [m for m in ledger["items"] if m["kind"] == "chargeback"]
    assert [(m["amount"], m["rail_reference"]) for m in chargebacks] == [(15_000, "dp_x")]
    timeline = await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline"))
    [event] = [e for e in timeline["items"] if e["type"] == "campaign.chargeback_lost"]
    assert event["data"]["platform_loss"] == 10_000  # already paid out when the network took it
