"""Engine-level interruptions never strand escrow: a cancellation request from the Temporal UI
is refused and recorded, a dispute child that is terminated gives the campaign its
deliverables back, and a dispute outlives its campaign's run (ParentClosePolicy.ABANDON)."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus

from db.models import TimelineEvent
from domain.dispute import Respond
from domain.money import Escrow
from tests.workflows.test_campaign import BRAND, CREATOR, state
from tests.workflows.test_dispute import file, funded
from workflows.dispute import DisputeWorkflow


@pytest.fixture
def env(temporal_env, worker):
    """The real dev server: the time-skipping test server never tells a parent that its
    child was terminated."""
    return temporal_env


async def _timeline_kinds(sessionmaker, source: str) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.exec(select(TimelineEvent).where(TimelineEvent.source == source))
        return [row.kind for row in rows.all()]


async def _until(probe, what: str):
    """Polls `probe` until it returns something truthy (the change is asynchronous)."""
    for _ in range(400):
        if result := await probe():
            return result
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def _status(handle) -> WorkflowExecutionStatus:
    # The raw call: the time-skipping server's Datetime search attributes do not parse in
    # `handle.describe()`.
    response = await handle._client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=handle._client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id),
        )
    )
    return WorkflowExecutionStatus(response.workflow_execution_info.status)


async def _running(handle) -> bool:
    return await _status(handle) == WorkflowExecutionStatus.RUNNING


async def test_cancellation_request_on_a_dispute_is_refused_and_recorded(
    env, task_queue, sessionmaker
):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    dispute_id = dispute.id.removeprefix("dispute-")

    await dispute.cancel()

    async def refused():
        kinds = await _timeline_kinds(sessionmaker, dispute_id)
        return "dispute.cancellation_request_refused" in kinds

    await _until(refused, "the refusal on the dispute's timeline")
    assert await _running(dispute)
    # The case goes on as if nothing happened.
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I posted it")
    )
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "negotiation"
    assert (await state(campaign))["status"] == "disputed"


async def test_cancellation_request_on_a_campaign_is_refused_and_recorded(
    env, task_queue, sessionmaker
):
    campaign = await funded(env, task_queue)
    campaign_id = campaign.id.removeprefix("campaign-")

    await campaign.cancel()

    async def refused():
        kinds = await _timeline_kinds(sessionmaker, campaign_id)
        return "campaign.cancellation_request_refused" in kinds

    await _until(refused, "the refusal on the campaign's timeline")
    assert await _running(campaign)
    current = await state(campaign)
    assert current["status"] == "active"
    assert current["escrow"]["held"] == 15_000


async def test_terminated_dispute_gives_the_campaign_its_deliverables_back(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign, deliverables=[1], claim=(0, 5_000))
    before = await state(campaign)
    assert before["deliverables"][1]["status"] == "disputed"

    await dispute.terminate(reason="clicked in the UI")

    async def recovered():
        current = await state(campaign)
        return current if current["dispute_id"] is None else None

    current = await _until(recovered, "the campaign to recover from the terminated dispute")
    assert current["status"] == "active"
    assert [d["status"] for d in current["deliverables"]] == ["pending", "pending"]
    escrow = Escrow(**current["escrow"])
    assert escrow.is_exact and escrow.held == 15_000 and escrow.funded == 15_000
    # Nothing is open any more: a new dispute may be filed over the same work.
    again = await file(env, campaign, deliverables=[1], claim=(0, 5_000))
    assert (await again.query(DisputeWorkflow.state))["stage"] == "awaiting_response"


async def test_a_dispute_outlives_its_terminated_campaign(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)

    await campaign.terminate(reason="operator error")

    assert await _status(campaign) == WorkflowExecutionStatus.TERMINATED
    assert await _running(dispute)
    assert (await dispute.query(DisputeWorkflow.state))["brand_id"] == BRAND
