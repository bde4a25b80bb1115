"""An admin restores a campaign that was terminated at the engine level (issue #11): the
escrow comes back as it was, the campaign goes on, and a dispute that ended while the
campaign was down still settles — exactly once."""

from __future__ import annotations

import pytest

from tests.api.test_campaigns import create_and_fund, ok, until
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem


@pytest.fixture
async def pair(make_party):
    return await make_party("brand"), await make_party("creator", stripe_account="acct_c1")


async def test_a_terminated_campaign_is_restored_and_goes_on(api, pair, temporal_env):
    brand, creator = pair
    cid = (await create_and_fund(brand, creator))["id"]
    handle = temporal_env.client.get_workflow_handle(f"campaign-{cid}")
    assert_problem(await api.http.post(f"/v1/admin/campaigns/{cid}/restore"), 409, "invalid_state")

    await handle.terminate(reason="clicked Terminate in the UI")
    assert_problem(
        await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"),
        409,
        "invalid_state",
    )
    assert_problem(await brand.client.post(f"/v1/admin/campaigns/{cid}/restore"), 403, "forbidden")

    restored = await ok(await api.http.post(f"/v1/admin/campaigns/{cid}/restore"))
    assert restored["campaign_id"] == cid and restored["dispute_result_delivered"] is False
    campaign = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["status"] == "active" and campaign["escrow"]["held"] == 15_000
    # The campaign goes on from where it was.
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/deliverables/0/submit", json={"url": "https://x.io/0"}
        )
    )
    approved = await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"))
    assert approved["deliverables"][0]["status"] == "approved"


async def test_a_dispute_that_ended_while_its_campaign_was_down_settles_once(
    api, pair, temporal_env
):
    brand, creator = pair
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid, claim=(0, 15_000)))["id"]
    await temporal_env.client.get_workflow_handle(f"campaign-{cid}").terminate(reason="oops")

    # The dispute outlives its campaign (ParentClosePolicy.ABANDON) and is decided.
    resolved = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/respond", json={"statement": "fair", "accept_claim": True}
        )
    )
    assert resolved["stage"] == "resolved"

    restored = await ok(await api.http.post(f"/v1/admin/campaigns/{cid}/restore"))
    assert restored["dispute_result_delivered"] is True
    settled = await until(brand.client, cid, lambda c: c["dispute_id"] is None)
    assert [d["status"] for d in settled["deliverables"]] == ["settled", "settled"]
    assert settled["escrow"]["refunded_to_brand"] == 15_000 and settled["escrow"]["held"] == 0
    # One refund in the ledger, whatever the paths that reported the decision.
    refunds = [
        e
        for e in (await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline")))["items"]
        if e["kind"] == "deliverable.settled"
    ]
    assert len(refunds) == 1
