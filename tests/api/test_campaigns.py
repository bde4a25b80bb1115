"""Campaigns through the HTTP API on the real dev server, with PT1S-short windows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.test_parties import assert_problem

FAST = {
    "acceptance_window": "PT30S",
    "funding_window": "PT30S",
    "review_window": "PT30S",
    "clearing_period": "PT1S",
    "cancellation_window": "PT30S",
    "review_period": "PT2S",
}
ZERO = {
    "funded": 0,
    "held": 0,
    "released_to_creator": 0,
    "agency_commission": 0,
    "platform_fee": 0,
    "refunded_to_brand": 0,
    "charged_back": 0,
}


# A submission as the creator posts it.
WORK = {"url": "https://instagram.com/p/1", "notes": "live", "metrics": {"views": 1}}


def campaign_body(creator_id: str, amounts=(10_000, 5_000), **terms) -> dict:
    return {
        "title": "Spring launch",
        "brief": "Two posts about the new line",
        "creator_id": creator_id,
        "currency": "eur",
        "deliverables": [
            {"title": f"Post {i}", "description": "A reel", "amount": a}
            for i, a in enumerate(amounts)
        ],
        "terms": {**FAST, **terms},
    }


async def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


async def until(client, campaign_id: str, predicate, timeout: float = 30) -> dict:
    """Polls the authoritative state until a timer has done its work."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await ok(await client.get(f"/v1/campaigns/{campaign_id}"))
        if predicate(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.1)


async def create_and_accept(brand, creator, body: dict | None = None, **kw) -> dict:
    """A campaign created by the brand (`body`, or `campaign_body` with `kw`) and accepted by
    the creator: it waits for funding. Answers it as created."""
    body = body or campaign_body(creator.id, **kw)
    created = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{created['id']}/accept",
            json={"contract_hash": created["contract_hash"]},
        )
    )
    return created


async def create_and_fund(brand, creator, **kw) -> dict:
    cid = (await create_and_accept(brand, creator, **kw))["id"]
    return await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))


async def test_two_deliverables_to_completed_with_exact_escrow(api, trio):
    brand, creator, _ = trio
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
    )
    cid = created["id"]
    assert created["status"] == "awaiting_acceptance" and created["escrow"] == ZERO
    assert len(created["contract_hash"]) == 64 and created["budget"] == 15_000
    assert [d["index"] for d in created["deliverables"]] == [0, 1]

    accepted = await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    assert accepted["status"] == "awaiting_funding" and accepted["escrow"] == ZERO

    funded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund"))
    assert funded["status"] == "active"
    assert funded["escrow"] == {**ZERO, "funded": 15_000, "held": 15_000}

    work = {"url": "https://instagram.com/p/1", "notes": "live", "metrics": {"views": 1200}}
    submitted = await ok(
        await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work)
    )
    assert submitted["deliverables"][0]["status"] == "submitted"
    assert submitted["deliverables"][0]["submissions"][0]["metrics"] == {"views": 1200}

    changes = await ok(
        await brand.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/request-changes", json={"reason": "tag us"}
        )
    )
    assert changes["deliverables"][0]["status"] == "changes_requested"
    assert changes["deliverables"][0]["revisions"] == 1

    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work))
    approved = await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"))
    assert approved["deliverables"][0]["approved_by"] == "brand"
    assert approved["escrow"]["held"] == 15_000  # nothing moves before clearing

    released = await until(
        brand.client, cid, lambda s: s["deliverables"][0]["status"] == "released"
    )
    assert released["escrow"] == {
        **ZERO,
        "funded": 15_000,
        "held": 5_000,
        "released_to_creator": 9_000,
        "platform_fee": 1_000,
    }

    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/1/submit", json=work))
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/1/approve"))
    done = await until(brand.client, cid, lambda s: s["status"] == "completed")
    assert done["escrow"] == {
        **ZERO,
        "funded": 15_000,
        "released_to_creator": 13_500,
        "platform_fee": 1_500,
    }
    assert [d["status"] for d in done["deliverables"]] == ["released", "released"]

    listed = await ok(await creator.client.get("/v1/campaigns", params={"status": "completed"}))
    assert cid in [c["id"] for c in listed["items"]]
    timeline = await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline"))
    kinds = [e["type"] for e in timeline["items"]]
    assert kinds[:3] == ["campaign.created", "campaign.accepted", "campaign.funded"]
    assert kinds.count("deliverable.released") == 2 and kinds[-1] == "campaign.completed"
    inbox = await ok(await creator.client.get("/v1/notifications"))
    assert {"campaign.created", "campaign.funded", "campaign.completed"} <= {
        n["type"] for n in inbox["items"]
    }


async def test_auto_approval_by_silence_through_the_api(api, trio):
    brand, creator, _ = trio
    funded = await create_and_fund(brand, creator, amounts=(2_000,), review_window="PT1S")
    cid = funded["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/submit", json={"url": "https://x.io/a"}
        )
    )
    done = await until(brand.client, cid, lambda s: s["status"] == "completed")
    assert done["deliverables"][0]["approved_by"] == "auto"
    assert done["escrow"]["released_to_creator"] == 1_800 and done["escrow"]["platform_fee"] == 200


async def test_acceptance_window_expires_through_the_api(api, trio):
    brand, creator, _ = trio
    body = campaign_body(creator.id, acceptance_window="PT1S")
    cid = (await ok(await brand.client.post("/v1/campaigns", json=body), 201))["id"]
    expired = await until(brand.client, cid, lambda s: s["status"] == "expired")
    assert expired["escrow"] == ZERO
    late = await creator.client.post(
        f"/v1/campaigns/{cid}/accept", json={"contract_hash": expired["contract_hash"]}
    )
    assert_problem(late, 409, "invalid_state")


async def test_refusals_map_to_spec_codes(api, trio, temporal_env):
    brand, creator, stranger = trio
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id, max_revisions=1)),
        201,
    )
    cid = created["id"]
    handle = temporal_env.client.get_workflow_handle(f"campaign-{cid}")
    history_before = len((await handle.fetch_history()).events)

    assert_problem(
        await brand.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        ),
        403,
        "forbidden",
    )
    assert_problem(
        await creator.client.post(f"/v1/campaigns/{cid}/accept", json={"contract_hash": "0" * 64}),
        409,
        "contract_changed",
    )
    assert_problem(await brand.client.post(f"/v1/campaigns/{cid}/fund"), 409, "invalid_state")
    assert_problem(await stranger.client.get(f"/v1/campaigns/{cid}"), 404, "not_found")
    assert_problem(await stranger.client.post(f"/v1/campaigns/{cid}/cancel"), 404, "not_found")
    # Refused Updates never reach the workflow's history.
    assert len((await handle.fetch_history()).events) == history_before

    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund"))
    work = {"url": "https://x.io/a"}
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work))
    await ok(
        await brand.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/request-changes", json={"reason": "again"}
        )
    )
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work))
    assert_problem(
        await brand.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/request-changes", json={"reason": "more"}
        ),
        409,
        "revision_limit_reached",
    )
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/deliverables/9/approve"), 404, "not_found"
    )
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/deliverables/1/approve"),
        409,
        "invalid_state",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"deliverables": [{"title": "x", "amount": 0}]},
        {"deliverables": [{"title": "x", "amount": -5}]},
        {"deliverables": [{"title": "x", "amount": 1.5}]},
        {"deliverables": []},
        {"currency": "EURO"},
        {"terms": {"review_window": "PT0S"}},
        {"terms": {"review_window": "five days"}},
        {"terms": {"platform_fee_bps": 10_001}},
        {"terms": {"agency_commission_bps": 500}},  # no agency represents the creator
        {"creator_id": "pty_nobody"},
        # Before year 1 once in UTC (found by schemathesis: was a 500).
        {"deliverables": [{"title": "x", "amount": 1, "due_at": "0001-01-01T00:00:00+01:02"}]},
    ],
)
async def test_bad_amounts_and_durations_are_422(api, trio, change):
    brand, creator, _ = trio
    body = {**campaign_body(creator.id), **change}
    response = await brand.client.post("/v1/campaigns", json=body)
    assert_problem(response, 422, "validation_error")
    listed = await ok(await brand.client.get("/v1/campaigns"))
    assert listed["items"] == []


async def test_the_largest_budget_is_funded_and_booked(api, trio, sessionmaker):
    # 10^12 minor units (MAX_AMOUNT) is past PostgreSQL's 32-bit INTEGER: the ledger's money
    # columns are 64-bit (found by schemathesis: funding such a budget retried until it expired).
    brand, creator, _ = trio
    body = {**campaign_body(creator.id), "deliverables": [{"title": "x", "amount": 10**12}]}
    created = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    cid = created["id"]
    accept = {"contract_hash": created["contract_hash"]}
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/accept", json=accept))
    funded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    assert funded["escrow"]["held"] == 10**12
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    assert [(m["kind"], m["amount"]) for m in ledger["items"]] == [("fund", 10**12)]


async def test_declined_card_is_402_and_status_unchanged(api, trio):
    brand, creator, _ = trio
    cid = (await create_and_accept(brand, creator))["id"]
    declined = await brand.client.post(
        f"/v1/campaigns/{cid}/fund", json={"payment_method": "pm_card_visa_chargeDeclined"}
    )
    assert_problem(declined, 402, "payment_failed")
    after = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert after["status"] == "awaiting_funding" and after["escrow"] == ZERO
    funded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    assert funded["escrow"]["funded"] == 15_000


async def test_cancel_before_funding_and_cursor_pagination(api, trio):
    brand, creator, _ = trio
    ids = []
    for _ in range(3):
        created = await ok(
            await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
        )
        ids.append(created["id"])
    cancelled = await ok(await creator.client.post(f"/v1/campaigns/{ids[0]}/cancel"))
    assert cancelled["status"] == "cancelled"
    first = await ok(await brand.client.get("/v1/campaigns", params={"limit": 2}))
    second = await ok(
        await brand.client.get("/v1/campaigns", params={"limit": 2, "cursor": first["next_cursor"]})
    )
    assert [c["id"] for c in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    only = await ok(await brand.client.get("/v1/campaigns", params={"status": "cancelled"}))
    assert [c["id"] for c in only["items"]] == [ids[0]]


async def test_create_is_idempotent(api, trio):
    brand, creator, _ = trio
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id), headers=key), 201
    )
    again = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id), headers=key), 201
    )
    assert again == first
    listed = await ok(await brand.client.get("/v1/campaigns"))
    assert [c["id"] for c in listed["items"]] == [first["id"]]


async def test_overdue_deliverable_cancelled_by_brand(api, trio):
    brand, creator, _ = trio
    body = campaign_body(creator.id, amounts=(4_000, 6_000))
    body["deliverables"][0]["due_at"] = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    cid = created["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund"))
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/cancel"), 409, "invalid_state"
    )
    await until(brand.client, cid, lambda s: s["deliverables"][0]["status"] == "overdue")
    refunded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/cancel"))
    assert refunded["deliverables"][0]["status"] == "refunded"
    assert refunded["escrow"] == {
        **ZERO,
        "funded": 10_000,
        "held": 6_000,
        "refunded_to_brand": 4_000,
    }


async def test_funding_window_expires_through_the_api(api, trio):
    brand, creator, _ = trio
    body = campaign_body(creator.id, funding_window="PT1S")
    created = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    cid = created["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    expired = await until(brand.client, cid, lambda s: s["status"] == "expired")
    assert expired["escrow"] == ZERO
    assert_problem(await brand.client.post(f"/v1/campaigns/{cid}/fund"), 409, "invalid_state")


async def test_cancellation_by_silence_through_the_api(api, trio):
    brand, creator, _ = trio
    funded = await create_and_fund(brand, creator, cancellation_window="PT2S")
    cid = funded["id"]
    requested = await ok(await creator.client.post(f"/v1/campaigns/{cid}/cancel"))
    assert requested["cancellation"]["requested_by"] == "creator"
    assert_problem(await creator.client.post(f"/v1/campaigns/{cid}/cancel"), 409, "invalid_state")
    cancelled = await until(brand.client, cid, lambda s: s["status"] == "cancelled")
    assert cancelled["escrow"] == {**ZERO, "funded": 15_000, "refunded_to_brand": 15_000}
    assert [d["status"] for d in cancelled["deliverables"]] == ["refunded", "refunded"]


async def test_cancellation_confirmed_by_the_other_side(api, trio):
    brand, creator, _ = trio
    funded = await create_and_fund(brand, creator)
    cid = funded["id"]
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/cancel"))
    confirmed = await ok(await creator.client.post(f"/v1/campaigns/{cid}/cancel"))
    assert confirmed["status"] == "cancelled"
    assert confirmed["escrow"]["refunded_to_brand"] == 15_000 and confirmed["escrow"]["held"] == 0


async def test_temporal_ui_sees_summary_details_and_search_attributes(api, trio, temporal_env):
    brand, creator, _ = trio
    funded = await create_and_fund(brand, creator)
    cid = funded["id"]
    handle = temporal_env.client.get_workflow_handle(f"campaign-{cid}")
    description = await handle.describe()
    assert "Spring launch" in await description.static_summary()
    details = await description.static_details()  # None: the live view is current details
    assert details is None
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "`active`" in metadata.current_details and "held €150.00" in metadata.current_details
    query = f'ParleyCampaign="{cid}" AND ParleyStage="active"'
    found = []
    deadline = asyncio.get_running_loop().time() + 15  # visibility is eventually consistent
    while not found and asyncio.get_running_loop().time() < deadline:
        found = [w.id async for w in temporal_env.client.list_workflows(query)]
        await asyncio.sleep(0.2)
    assert found == [f"campaign-{cid}"]


async def test_admin_freezes_and_unfreezes(api, trio):
    brand, creator, _ = trio
    cid = (await create_and_fund(brand, creator))["id"]
    assert_problem(await brand.client.post(f"/v1/campaigns/{cid}/freeze"), 403, "forbidden")
    frozen = await ok(await api.http.post(f"/v1/campaigns/{cid}/freeze", json={"reason": "KYC"}))
    assert frozen["status"] == "frozen" and frozen["frozen_reason"] == "KYC"
    assert_problem(await api.http.post(f"/v1/campaigns/{cid}/freeze"), 409, "invalid_state")
    thawed = await ok(await api.http.post(f"/v1/campaigns/{cid}/unfreeze"))
    assert thawed["status"] == "active"
