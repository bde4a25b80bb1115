"""Hostile money input (issue #9 items 1 and 2): nothing a caller sends moves money beyond
the escrow, and money is only ever a strict integer of minor units."""

from __future__ import annotations

import pytest

from tests.api.test_campaigns import campaign_body, create_and_fund, ok
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem


@pytest.fixture
async def pair(make_party):
    return await make_party("brand"), await make_party("creator", stripe_account="acct_c1")


async def test_a_dispute_cannot_name_a_deliverable_twice_or_a_negative_one(api, pair):
    brand, creator = pair
    cid = (await create_and_fund(brand, creator, amounts=(5_000, 5_000, 5_000)))["id"]
    for deliverables in ([2, -1], [-3], [3], [1, 1]):
        body = {
            "reason": "late",
            "deliverables": deliverables,
            "claim": {"release_to_creator": 0, "refund_to_brand": 10_000},
            "statement": "s",
        }
        assert_problem(
            await brand.client.post(f"/v1/campaigns/{cid}/disputes", json=body),
            422,
            "validation_error",
        )
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["dispute_id"] is None and campaign["escrow"]["held"] == 15_000


@pytest.mark.parametrize(
    "amount",
    [True, "100", 100.0, 1e3, -1, 10**13],
    ids=["bool", "str", "float", "1e3", "neg", "huge"],
)
async def test_amounts_are_strict_integers(api, pair, amount):
    brand, creator = pair
    body = campaign_body(creator.id)
    body["deliverables"][0]["amount"] = amount
    assert_problem(await brand.client.post("/v1/campaigns", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    "change",
    [
        {"currency": "zzz"},
        {"currency": "xxx"},
        {"due_at": "2000-01-01T00:00:00Z"},
        {"due_at": 12345},
    ],
    ids=["zzz", "xxx", "past", "number"],
)
async def test_currency_and_due_dates(api, pair, change):
    brand, creator = pair
    body = campaign_body(creator.id)
    if "currency" in change:
        body["currency"] = change["currency"]
    else:
        body["deliverables"][0]["due_at"] = change["due_at"]
    assert_problem(await brand.client.post("/v1/campaigns", json=body), 422, "validation_error")


async def test_claims_and_offers_are_strict_integers(api, pair):
    brand, creator = pair
    cid = (await create_and_fund(brand, creator))["id"]
    body = {
        "reason": "late",
        "claim": {"release_to_creator": "0", "refund_to_brand": "15000"},
        "statement": "s",
    }
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/disputes", json=body), 422, "validation_error"
    )
    did = (await file(brand, cid))["id"]
    await ok(await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": "no"}))
    assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/offers",
            json={"release_to_creator": 7500.0, "refund_to_brand": 7500},
        ),
        422,
        "validation_error",
    )
