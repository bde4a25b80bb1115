"""The dispute as a mediator reads it in the Temporal UI (issue #12): current details with
names, money and relative deadlines; ParleyOverdue for the overdue queue; refusals as one
sentence (time-skipping)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.converter import PayloadConverter

from domain.dispute import (
    AddEvidence,
    DisputeContext,
    EvidenceItem,
    ProposeSettlement,
    Respond,
    SubmissionSummary,
)
from tests.workflows.test_campaign import BRAND, CREATOR
from tests.workflows.test_dispute import MEDIATOR, file, funded, to_mediation
from workflows.dispute import DisputeWorkflow

CONTEXT = DisputeContext(
    names={BRAND: "Acme Shoes", CREATOR: "Cleo Creates"},
    submissions=[
        SubmissionSummary(
            index=0,
            title="Launch reel",
            url="https://video.example/reel-1",
            metrics={"views": 1200},
        )
    ],
)


async def details(handle) -> str:
    return (await handle.query("__temporal_workflow_metadata")).current_details


async def search_attribute(env, workflow_id: str, name: str):
    """From the raw describe: the time-skipping server's parsed describe can fail on
    Datetime attributes (see test_long_lived.py). A just-started dispute upserts its
    attributes in its first workflow task, so this waits (bounded) for them to appear."""
    request = DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        described = await env.client.workflow_service.describe_workflow_execution(request)
        fields = described.workflow_execution_info.search_attributes.indexed_fields
        if name in fields or asyncio.get_running_loop().time() > deadline:
            return PayloadConverter.default.from_payload(fields[name]) if name in fields else None
        await asyncio.sleep(0.05)


async def test_details_show_names_money_deadline_work_evidence_and_the_json_to_send(
    env, task_queue
):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)  # 15000 eur, claimed all for the brand
    await dispute.execute_update(DisputeWorkflow.filed, CONTEXT)
    shown = await details(dispute)
    assert "**Disputed:** €150.00" in shown
    assert "€0.00 to the creator / €150.00 to the brand" in shown  # the claim
    assert "Acme Shoes (`pty_brand`)" in shown and "Cleo Creates (`pty_creator`)" in shown
    # P5D response window, relative to workflow.now() (a few seconds went by since filing)
    assert re.search(r"\*\*in (5 d|4 d 23 h)\*\* \(as of ", shown), shown
    assert "> Nothing was posted." in shown  # the claimant's statement
    assert "[https://video.example/reel-1](https://video.example/reel-1)" in shown
    assert "views 1,200" in shown
    # A second context (e.g. typed in the UI) is refused: the API's stands.
    with pytest.raises(WorkflowUpdateFailedError):
        await dispute.execute_update(
            DisputeWorkflow.filed, DisputeContext(names={BRAND: "Someone Else"})
        )

    await env.sleep(timedelta(days=3))
    await to_mediation(dispute)
    item = EvidenceItem(
        id="ev_1",
        kind="link",
        submitted_by=CREATOR,
        at=await env.get_current_time(),
        description="The post, live",
        sha256="a" * 64,
        url="https://video.example/reel-1",
    )
    await dispute.execute_update(
        DisputeWorkflow.add_evidence, AddEvidence(actor_id=CREATOR, item=item)
    )
    shown = await details(dispute)
    assert "> I did" in shown  # the response
    assert "| `ev_1` | link | Cleo Creates (`pty_creator`) | The post, live [https://" in shown
    assert re.search(r"\*\*in (2 d|47 h)\*\*", shown), shown  # P2D mediation window
    # The exact JSON for the next Update, ready to paste.
    block = shown.split("```json\n", 1)[1].split("\n```", 1)[0]
    body = json.loads(block)
    assert "**Send an Update** `propose_settlement`" in shown
    assert body["mediator_id"] == MEDIATOR and "console_token" in body
    ProposeSettlement.model_validate({**body, "console_token": None})  # fits the model
    assert body["release_to_creator"] + body["refund_to_brand"] == 15_000
    assert len(shown) < 8_000


async def test_details_stay_bounded_with_long_texts_and_many_items(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="word " * 3_000)
    )
    now = await env.get_current_time()
    for n in range(40):
        item = EvidenceItem(
            id=f"ev_{n}",
            kind="text",
            submitted_by=BRAND,
            at=now,
            description="d" * 1_500,
            sha256=f"{n:064x}",
        )
        await dispute.execute_update(
            DisputeWorkflow.add_evidence, AddEvidence(actor_id=BRAND, item=item)
        )
    shown = await details(dispute)
    assert "… and 25 earlier items" in shown
    assert len(shown) < 12_000


async def test_parley_overdue_set_when_the_mediator_lets_the_deadline_pass(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    assert await search_attribute(env, dispute.id, "ParleyOverdue") is False
    await to_mediation(dispute)
    await env.sleep(timedelta(days=2, hours=1))  # P2D mediation window passed, no proposal
    assert (await dispute.query(DisputeWorkflow.state))["mediator_overdue"] is True
    assert await search_attribute(env, dispute.id, "ParleyOverdue") is True
    shown = await details(dispute)
    assert "⚠️ **mediator overdue**" in shown and "**overdue by " in shown
    # The proposal moves the case on: off the overdue queue.
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(
            mediator_id=MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000, rationale="r"
        ),
    )
    assert await search_attribute(env, dispute.id, "ParleyOverdue") is False


async def test_a_refusal_carries_one_sentence_and_no_stack_trace(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await to_mediation(dispute)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await dispute.execute_update(
            DisputeWorkflow.propose_settlement,
            ProposeSettlement(mediator_id=MEDIATOR, release_to_creator=1, refund_to_brand=1),
        )
    failure = refused.value.cause.failure
    assert failure.message.startswith("release_to_creator + refund_to_brand must equal")
    assert failure.stack_trace == "" and not failure.HasField("cause")
    # JSON that does not fit the Update's model names the field, also without a traceback.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await dispute.execute_update(
            "propose_settlement", {"mediator_id": MEDIATOR, "release_to_creator": 1}
        )
    failure = refused.value.cause.failure
    assert refused.value.cause.type == "validation_error"
    assert "refund_to_brand: Field required" in failure.message, failure.message
    assert failure.stack_trace == ""
