"""An admin restores a campaign that was terminated at the engine level (issue #11): the
escrow comes back as it was, the campaign goes on, and a dispute that ended while the
campaign was down still settles — exactly once."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

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
        if e["type"] == "deliverable.settled"
    ]
    assert len(refunds) == 1


async def test_after_a_reset_the_read_model_and_timeline_follow_the_new_run(
    api, pair, temporal_env
):
    """An operator resets a campaign to an earlier point (Temporal UI: Reset): the changes
    the new run makes must reach the read model and the timeline, not be taken for retries
    of the changes the discarded run had recorded under the same numbers."""
    brand, creator = pair
    cid = (await create_and_fund(brand, creator))["id"]
    handle = temporal_env.client.get_workflow_handle(f"campaign-{cid}")
    funded_at = max(
        e.event_id
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    submit = f"/v1/campaigns/{cid}/deliverables/0/submit"
    await ok(await creator.client.post(submit, json={"url": "https://x.io/discarded"}))
    described = await handle.describe()
    await temporal_env.client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal_env.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=described.run_id),
            reason="operator reset to just after funding",
            workflow_task_finish_event_id=funded_at,
            request_id=f"reset-{cid}",
        )
    )
    await until(brand.client, cid, lambda c: c["deliverables"][0]["status"] == "pending")
    await ok(await creator.client.post(submit, json={"url": "https://x.io/kept"}))

    listed = await ok(await brand.client.get("/v1/campaigns"))
    (row,) = [c for c in listed["items"] if c["id"] == cid]
    assert row["deliverables"][0]["submissions"][-1]["url"] == "https://x.io/kept"
    timeline = (await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline")))["items"]
    submitted = [
        e["data"]["submission"]["url"] for e in timeline if e["type"] == "deliverable.submitted"
    ]
    assert submitted == ["https://x.io/discarded", "https://x.io/kept"]
