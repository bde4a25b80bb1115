"""Reviews and reputation through the HTTP API (SPEC §6): double-blind, one per side, rated
1–5 within the review period, held back while a chargeback is open."""

from __future__ import annotations

import asyncio

from tests.api.test_campaigns import create_and_fund, ok, until
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem


async def completed(brand, creator, review_period="PT60S") -> str:
    """A one-deliverable campaign approved by silence and paid out: status completed."""
    cid = (
        await create_and_fund(
            brand, creator, amounts=(2_000,), review_window="PT1S", review_period=review_period
        )
    )["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/submit", json={"url": "https://x.io/a"}
        )
    )
    await until(brand.client, cid, lambda s: s["status"] == "completed")
    return cid


async def review(party, cid, rating, comment="") -> dict:
    body = {"rating": rating, "comment": comment}
    return await ok(await party.client.post(f"/v1/campaigns/{cid}/reviews", json=body), 201)


async def reviews(party, cid) -> dict:
    return await ok(await party.client.get(f"/v1/campaigns/{cid}/reviews"))


async def until_revealed(party, cid, timeout: float = 30) -> dict:
    """Polls the reviews until the workflow has revealed them (a timer or an unfreeze)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (shown := await reviews(party, cid))["revealed"]:
        assert asyncio.get_running_loop().time() < deadline, shown
        await asyncio.sleep(0.1)
    return shown


async def test_double_blind_until_both_have_reviewed(api, trio):
    brand, creator, stranger = trio
    active = (await create_and_fund(brand, creator))["id"]
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{active}/reviews", json={"rating": 5}),
        409,
        "invalid_state",
    )
    cid = await completed(brand, creator)
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/reviews", json={"rating": 6}),
        422,
        "validation_error",
    )
    mine = await review(brand, cid, 5, "Delivered early")
    assert mine["visible"] is False and mine["subject_id"] == creator.id
    # The author sees its own review; the reviewed side sees nothing yet.
    assert [r["rating"] for r in (await reviews(brand, cid))["items"]] == [5]
    hidden = await reviews(creator, cid)
    assert hidden["items"] == [] and hidden["revealed"] is False
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/reviews", json={"rating": 4}),
        409,
        "already_reviewed",
    )
    assert_problem(
        await stranger.client.post(f"/v1/campaigns/{cid}/reviews", json={"rating": 1}),
        404,
        "not_found",
    )
    theirs = await review(creator, cid, 4, "Clear brief")
    assert theirs["visible"] is True
    for party in (brand, creator):
        shown = await reviews(party, cid)
        assert shown["revealed"] is True
        assert {(r["side"], r["rating"], r["visible"]) for r in shown["items"]} == {
            ("brand", 5, True),
            ("creator", 4, True),
        }


async def test_revealed_when_the_period_ends_then_closed(api, trio):
    brand, creator, _ = trio
    cid = await completed(brand, creator, review_period="PT3S")
    await review(creator, cid, 3, "Slow payment")
    assert (await reviews(brand, cid))["items"] == []
    shown = await until_revealed(brand, cid)
    assert [(r["side"], r["rating"]) for r in shown["items"]] == [("creator", 3)]
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/reviews", json={"rating": 5}),
        409,
        "invalid_state",
    )


async def test_held_back_while_a_chargeback_is_open(api, trio):
    brand, creator, _ = trio
    cid = await completed(brand, creator)
    await ok(await api.http.post(f"/v1/campaigns/{cid}/freeze", json={"reason": "chargeback"}))
    await review(brand, cid, 2)
    assert (await review(creator, cid, 4))["visible"] is False
    assert [r["side"] for r in (await reviews(brand, cid))["items"]] == ["brand"]
    await ok(await api.http.post(f"/v1/campaigns/{cid}/unfreeze"))
    assert len((await until_revealed(brand, cid))["items"]) == 2


async def test_reputation_figures(api, trio):
    """Two completed campaigns, one after a dispute the creator lost by accepting the claim."""
    brand, creator, _ = trio
    first = await completed(brand, creator)
    await review(brand, first, 5)
    await review(creator, first, 4)

    second = (await create_and_fund(brand, creator, amounts=(3_000, 1_000), review_period="PT60S"))[
        "id"
    ]
    dispute = await file(brand, second, claim=(1_000, 3_000))
    await ok(
        await creator.client.post(
            f"/v1/disputes/{dispute['id']}/respond",
            json={"statement": "Fair enough", "accept_claim": True},
        )
    )
    await until(brand.client, second, lambda s: s["status"] == "completed")
    await review(brand, second, 2)
    await review(creator, second, 3)

    profile = await ok(await brand.client.get(f"/v1/parties/{creator.id}"))
    assert profile["reputation"] == {
        "average_rating": 3.5,
        "reviews": 2,
        "campaigns_completed": 2,
        "disputes_filed": 0,
        "disputes_lost": 1,
    }
    me = await ok(await brand.client.get("/v1/parties/me"))
    assert me["reputation"] == {
        "average_rating": 3.5,
        "reviews": 2,
        "campaigns_completed": 2,
        "disputes_filed": 1,
        "disputes_lost": 0,
    }
