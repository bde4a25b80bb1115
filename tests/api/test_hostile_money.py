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


def _nested(depth: int) -> dict:
    value: dict = {"views": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "metrics",
    [_nested(196), _nested(5), {f"k{n}": n for n in range(51)}, {"blob": "x" * 20_000}],
    ids=["196-deep", "5-deep", "51-keys", "20KB"],
)
async def test_metrics_cannot_wedge_a_funded_campaign(api, pair, metrics):
    """Issue #9 item 5: metrics nested 196 deep wedged the campaign (its timers stopped)."""
    brand, creator = pair
    cid = (await create_and_fund(brand, creator))["id"]
    assert_problem(
        await creator.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/submit",
            json={"url": "https://x.io/p", "metrics": metrics},
        ),
        422,
        "validation_error",
    )
    # The campaign still answers and still acts.
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/submit",
            json={"url": "https://x.io/p", "metrics": {"views": {"by_day": {"mon": 1}}}},
        )
    )
    assert (await ok(await brand.client.get(f"/v1/campaigns/{cid}")))["deliverables"][0][
        "status"
    ] == "submitted"
