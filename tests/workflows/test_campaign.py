"""CampaignWorkflow deadlines at their real lengths, on the time-skipping test server."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio.client import WorkflowHandle

from domain.campaign import (
    AcceptCampaign,
    Action,
    DeliverableAction,
    DeliverableSpec,
    FundRequest,
    NewCampaign,
    SubmitDeliverable,
)
from domain.terms import Terms
from workflows.campaign import CampaignWorkflow

BRAND, CREATOR = "pty_brand", "pty_creator"


def new_campaign(amounts=(10_000, 5_000), due_at: datetime | None = None, **terms) -> NewCampaign:
    return NewCampaign(
        id="cmp_" + uuid.uuid4().hex[:12],
        brand_id=BRAND,
        creator_id=CREATOR,
        title="Spring launch",
        brief="Two posts",
        currency="eur",
        deliverables=[
            DeliverableSpec(title=f"Post {i}", amount=a, due_at=due_at)
            for i, a in enumerate(amounts)
        ],
        terms=Terms(**terms),
        created_by=BRAND,
    )


async def start(env, task_queue, new: NewCampaign) -> WorkflowHandle:
    return await env.client.start_workflow(
        CampaignWorkflow.run, new, id=f"campaign-{new.id}", task_queue=task_queue
    )


async def state(handle) -> dict:
    return await handle.query(CampaignWorkflow.state)


async def accept_and_fund(handle) -> dict:
    contract = (await state(handle))["contract_hash"]
    await handle.execute_update(
        CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
    )
    return await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))


async def test_acceptance_window_expires_after_p3d(env, task_queue):
    handle = await start(env, task_queue, new_campaign())
    await env.sleep(timedelta(days=2, hours=23))
    assert (await state(handle))["status"] == "awaiting_acceptance"
    result = await handle.result()
    assert result["status"] == "expired"
    assert result["ended_at"] >= result["accept_by"]


async def test_funding_window_expires_after_p3d(env, task_queue):
    handle = await start(env, task_queue, new_campaign())
    contract = (await state(handle))["contract_hash"]
    await handle.execute_update(
        CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
    )
    await env.sleep(timedelta(days=2, hours=23))
    assert (await state(handle))["status"] == "awaiting_funding"
    result = await handle.result()
    assert result["status"] == "expired" and result["escrow"]["funded"] == 0


async def test_review_window_auto_approves_then_clearing_releases(env, task_queue):
    handle = await start(env, task_queue, new_campaign(amounts=(10_000,)))
    await accept_and_fund(handle)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.io/1")
    )
    await env.sleep(timedelta(days=4, hours=23))
    assert (await state(handle))["deliverables"][0]["status"] == "submitted"
    await env.sleep(timedelta(hours=2))  # P5D review window passed
    item = (await state(handle))["deliverables"][0]
    assert item["status"] == "approved" and item["approved_by"] == "auto"
    await env.sleep(timedelta(days=1, hours=22))
    assert (await state(handle))["deliverables"][0]["status"] == "approved"
    await env.sleep(timedelta(hours=3))  # P2D clearing passed
    current = await state(handle)
    assert current["deliverables"][0]["status"] == "released"
    assert current["status"] == "completed"
    assert current["escrow"] == {
        "funded": 10_000,
        "held": 0,
        "released_to_creator": 9_000,
        "agency_commission": 0,
        "platform_fee": 1_000,
        "refunded_to_brand": 0,
        "charged_back": 0,
    }
    # The workflow stays open for the P14D review period, then ends.
    await env.sleep(timedelta(days=13))
    assert (await state(handle))["status"] == "completed"
    assert (await handle.result())["status"] == "completed"


async def test_due_date_marks_overdue_and_brand_cancels_with_refund(env, task_queue):
    handle = await start(
        env,
        task_queue,
        new_campaign(
            amounts=(7_000, 3_000), due_at=await env.get_current_time() + timedelta(days=10)
        ),
    )
    await accept_and_fund(handle)
    await env.sleep(timedelta(days=9))
    assert (await state(handle))["deliverables"][0]["status"] == "pending"
    await env.sleep(timedelta(days=1, hours=1))
    current = await state(handle)
    assert [d["status"] for d in current["deliverables"]] == ["overdue", "overdue"]
    await handle.execute_update(
        CampaignWorkflow.cancel_deliverable, DeliverableAction(actor_id=BRAND, index=0)
    )
    after = await state(handle)
    assert after["deliverables"][0]["status"] == "refunded"
    assert after["escrow"]["refunded_to_brand"] == 7_000 and after["escrow"]["held"] == 3_000


async def test_cancellation_confirmed_by_silence_after_p2d(env, task_queue):
    handle = await start(env, task_queue, new_campaign(amounts=(6_000, 4_000)))
    await accept_and_fund(handle)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.io/1")
    )
    await handle.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    await handle.execute_update(CampaignWorkflow.cancel, Action(actor_id=BRAND))
    assert (await state(handle))["status"] == "active"
    await env.sleep(timedelta(days=1, hours=23))
    assert (await state(handle))["status"] == "active"
    await env.sleep(timedelta(hours=2))
    current = await state(handle)
    assert current["status"] == "cancelled"
    # The approved deliverable still clears (P2D from approval) and releases.
    assert [d["status"] for d in current["deliverables"]] == ["released", "refunded"]
    assert current["escrow"]["refunded_to_brand"] == 4_000
    assert current["escrow"]["released_to_creator"] + current["escrow"]["platform_fee"] == 6_000
    result = await handle.result()
    assert result["status"] == "cancelled" and result["escrow"]["held"] == 0
