"""Money exactly once against a rail that behaves as Stripe does (issue #10): the real API and
worker, `StripeRail` configured as in production (`PARLEY_PAYMENTS=stripe`, `STRIPE_API_BASE`)
and pointed at the stand-in (tests/stripe_standin.py), which forgets keys, answers slowly,
fails in bursts, settles PaymentIntents later and sends its webhooks out of order and twice.
After each scenario the campaign's ledger equals the stand-in's book, object for object."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from config import Settings
from tests.api.test_campaigns import WORK, campaign_body, ok, until
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.stripe_standin import StripeStandin, compare_ledger, double_movements

# stripe 16's HTTPX client posts its (already encoded) form with httpx's deprecated `data=`.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

SETTLING = {"payment_method": "pm_sepa_debit_processing"}


@pytest.fixture
def standin():
    with StripeStandin(webhook_secret=STRIPE_WEBHOOK_SECRET) as stripe:
        yield stripe


@pytest.fixture
def settings(settings, standin, monkeypatch) -> Settings:
    """The conftest's settings, with the rail configured from the environment as production
    configures it."""
    monkeypatch.setenv("PARLEY_PAYMENTS", "stripe")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_standin")
    monkeypatch.setenv("STRIPE_API_BASE", standin.url)
    ours = settings.model_dump(exclude={"payments", "stripe_api_key", "stripe_api_base"})
    configured = Settings(**ours)
    assert (configured.payments, configured.stripe_api_base) == ("stripe", standin.url)
    return configured


@pytest.fixture
def stripe(standin, api) -> StripeStandin:
    standin.webhook_url = f"{api.base_url}/v1/webhooks/stripe"
    return standin


async def post(client, path: str, json: dict | None = None, timeout: float = 90):
    """As a careful client posts: one Idempotency-Key, retried while the answer is 503/429
    (an outcome not known yet, a busy workflow)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.post(path, json=json, headers=headers)
        if response.status_code not in (429, 503):
            return response
        assert asyncio.get_running_loop().time() < deadline, response.text
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


async def accepted(brand, creator, amounts=(10_000, 5_000), **terms) -> str:
    created = await ok(
        await post(brand.client, "/v1/campaigns", campaign_body(creator.id, amounts, **terms)),
        201,
    )
    cid = created["id"]
    body = {"contract_hash": created["contract_hash"]}
    await ok(await post(creator.client, f"/v1/campaigns/{cid}/accept", body))
    return cid


async def ledger(client, cid: str) -> list[dict]:
    return (await ok(await client.get(f"/v1/campaigns/{cid}/ledger")))["items"]


async def assert_ledger_is_the_book(client, stripe: StripeStandin, cid: str) -> list[dict]:
    legs = await ledger(client, cid)
    assert not [m for m in legs if m["state"] == "pending"], legs
    book = stripe.book_for(cid)
    assert compare_ledger(legs, book) == [], (legs, book)
    assert double_movements(book) == []
    return legs


async def approve(brand, creator, cid: str, index: int) -> None:
    base = f"/v1/campaigns/{cid}/deliverables/{index}"
    await ok(await post(creator.client, f"{base}/submit", WORK))
    await ok(await post(brand.client, f"{base}/approve"))


async def test_a_5xx_burst_on_a_transfer_pays_the_creator_once(stripe, trio):
    brand, creator, _ = trio
    cid = await accepted(brand, creator)
    await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    # The first attempt fails at Stripe's front door; the second is made and its 500 saved
    # under the key, so every replay of that key answers 500 (Stripe v1 saves 500s too).
    stripe.fail_next("POST /v1/transfers", when="before")
    stripe.fail_next("POST /v1/transfers", when="after")
    await approve(brand, creator, cid, 0)
    released = await until(
        brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released"
    )
    assert released["escrow"]["released_to_creator"] + released["escrow"]["platform_fee"] == 10_000
    assert stripe.routes("POST /v1/transfers") == [500, 500]
    transfers = [b for b in stripe.book_for(cid) if b.kind == "transfer"]
    assert len(transfers) == 1 and transfers[0].idempotency_key.endswith(":creator")
    await assert_ledger_is_the_book(brand.client, stripe, cid)


# SQLite only: 20 s of waiting on the SDK's timeout, and the database plays no part in it.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_charge_answered_after_the_timeout_is_found_not_made_again(stripe, trio):
    brand, creator, _ = trio
    cid = await accepted(brand, creator)
    # Made at once, answered 40 s later: past the SDK's 20 s and the activity's 30 s.
    stripe.slow_next("POST /v1/payment_intents", 40)
    try:
        funded = await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    finally:
        stripe.release()
    assert funded["status"] == "active" and funded["escrow"]["funded"] == 15_000
    # One POST (the slow one); its retry found the PaymentIntent by search instead.
    assert stripe.routes("POST /v1/payment_intents") == [200]
    assert stripe.routes("GET /v1/payment_intents/search") == [200]
    charges = [b for b in stripe.book_for(cid) if b.kind == "charge"]
    assert len(charges) == 1 and charges[0].status == "succeeded"
    await assert_ledger_is_the_book(brand.client, stripe, cid)


async def test_a_forgotten_key_is_looked_up_before_paying_again(stripe, trio):
    brand, creator, _ = trio
    # Stripe forgets a key after 24 h; here after half a second, so Temporal's next retry
    # (a second later) reaches a Stripe that no longer knows it.
    stripe.key_ttl = 0.5
    cid = await accepted(brand, creator)
    stripe.fail_next("POST /v1/payment_intents", when="after")  # charged, answer lost
    funded = await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    assert funded["status"] == "active" and funded["escrow"]["funded"] == 15_000
    stripe.fail_next("POST /v1/transfers", when="after")  # paid, answer lost
    await approve(brand, creator, cid, 0)
    await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released")
    assert stripe.routes("POST /v1/payment_intents") == [500]
    assert stripe.routes("POST /v1/transfers") == [500]
    kinds = sorted(b.kind for b in stripe.book_for(cid))
    assert kinds == ["charge", "transfer"]
    await assert_ledger_is_the_book(brand.client, stripe, cid)


async def test_processing_then_succeeded_activates_the_campaign(stripe, trio):
    brand, creator, _ = trio
    cid = await accepted(brand, creator)
    pending = await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund", SETTLING))
    assert pending["status"] == "funding_pending" and pending["escrow"]["funded"] == 0
    (leg,) = await assert_ledger_is_the_book(brand.client, stripe, cid)
    assert leg["state"] == "settling"

    stripe.settle(leg["rail_reference"], succeeded=True)
    await asyncio.to_thread(stripe.deliver, order="shuffle", repeat=2)
    active = await until(brand.client, cid, lambda c: c["status"] == "active")
    assert active["escrow"]["funded"] == 15_000
    (leg,) = await assert_ledger_is_the_book(brand.client, stripe, cid)
    assert leg["state"] == "succeeded"
    assert stripe.pending == []


async def test_processing_then_payment_failed_is_not_funded(stripe, trio):
    brand, creator, _ = trio
    cid = await accepted(brand, creator)
    await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund", SETTLING))
    (leg,) = await ledger(brand.client, cid)

    stripe.settle(leg["rail_reference"], succeeded=False)
    await asyncio.to_thread(stripe.deliver, order="reverse", repeat=2)
    back = await until(brand.client, cid, lambda c: c["status"] == "awaiting_funding")
    assert back["escrow"]["funded"] == 0
    (leg,) = await assert_ledger_is_the_book(brand.client, stripe, cid)
    assert leg["state"] == "failed"
    assert stripe.book_for(cid) == []


async def card_dispute_end_state(brand, creator, stripe, order: str, repeat: int) -> dict:
    # The lost dispute takes deliverable 1's money and so completes the campaign; a review
    # period longer than the deliveries keeps its workflow open for the events after it (an
    # event for a campaign whose workflow has ended is acknowledged and changes nothing).
    cid = await accepted(brand, creator, review_period="PT5M")
    await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    await approve(brand, creator, cid, 0)
    await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released")
    await asyncio.to_thread(stripe.deliver)  # the funding and transfer events, in order
    (leg,) = [m for m in await ledger(brand.client, cid) if m["kind"] == "fund"]
    won = stripe.dispute(leg["rail_reference"], amount=3_000, reason="duplicate")
    stripe.close_dispute(won, "won")
    lost = stripe.dispute(leg["rail_reference"], amount=5_000)
    stripe.close_dispute(lost, "lost")
    await asyncio.to_thread(stripe.deliver, order=order, repeat=repeat)
    assert stripe.pending == []
    end = await until(
        brand.client,
        cid,
        lambda c: c["escrow"]["charged_back"] and not c["frozen"] and not c["holds"],
    )
    await assert_ledger_is_the_book(brand.client, stripe, cid)
    return end


async def test_card_dispute_events_out_of_order_and_twice_end_the_same(stripe, trio):
    brand, creator, _ = trio
    in_order = await card_dispute_end_state(brand, creator, stripe, "created", 1)
    shuffled = await card_dispute_end_state(brand, creator, stripe, "reverse", 2)

    def outcome(c: dict) -> tuple:
        return (
            c["status"],
            c["escrow"],
            sorted(c["card_disputes"].values()),
            [d["status"] for d in c["deliverables"]],
        )

    assert outcome(shuffled) == outcome(in_order)
    assert in_order["escrow"]["charged_back"] == 5_000  # deliverable 1's 5,000 still held


async def test_a_payout_refused_by_stripe_goes_out_once_on_account_updated(stripe, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_1Onboarding")
    stripe.set_account("acct_1Onboarding", payouts_enabled=False)  # still in onboarding
    cid = await accepted(brand, creator)
    await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    await approve(brand, creator, cid, 0)
    blocked = await until(
        brand.client, cid, lambda c: c["deliverables"][0]["payout_blocked"] is not None
    )
    assert "capabilities" in blocked["deliverables"][0]["payout_blocked"]
    assert [b.kind for b in stripe.book_for(cid)] == ["charge"]

    stripe.set_account("acct_1Onboarding", payouts_enabled=True)
    await asyncio.to_thread(stripe.deliver, order="shuffle", repeat=2)
    paid = await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released")
    assert paid["deliverables"][0]["payout_blocked"] is None
    legs = await assert_ledger_is_the_book(brand.client, stripe, cid)
    releases = [(m["idempotency_key"].removeprefix(cid), m["state"]) for m in legs]
    assert (":release:0:creator", "failed") in releases
    assert (":release:0:creator:2", "succeeded") in releases


async def test_reconciliation_reads_stripe_and_finds_a_payout_made_twice(
    stripe, trio, api, settings
):
    """The sweep compares each campaign's ledger with what Stripe itself holds (its charge,
    the transfers of its transfer group, the refunds of its charge), so a transfer made a
    second time under the same business key — a retry after Stripe forgot the key, by a
    version that did not look first — is reported, while a clean campaign is not."""
    settings.reconciliation_quiet_seconds = 0
    brand, creator, _ = trio
    cid = await accepted(brand, creator)
    await ok(await post(brand.client, f"/v1/campaigns/{cid}/fund"))
    await approve(brand, creator, cid, 0)
    await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released")
    report = await ok(await api.http.post("/v1/admin/reconciliation"))
    assert [f for f in report["findings"] if f["campaign_id"] == cid] == []

    (sent,) = [b for b in stripe.book_for(cid) if b.kind == "transfer"]
    async with httpx.AsyncClient() as http:
        again = await http.post(
            f"{stripe.url}/v1/transfers",
            data={
                "amount": sent.amount,
                "currency": "eur",
                "destination": "acct_creator1",
                "transfer_group": cid,
                "metadata[idempotency_key]": sent.idempotency_key,
            },
            headers={"Authorization": "Bearer sk_test_standin"},
        )
    assert again.status_code == 200, again.text
    report = await ok(await api.http.post("/v1/admin/reconciliation"))
    assert [
        (f["problem"], f["idempotency_key"]) for f in report["findings"] if f["campaign_id"] == cid
    ] == [(f"rail transfer {sent.amount} made twice", sent.idempotency_key)]
