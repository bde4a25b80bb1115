"""Weeks-long campaigns at real lengths (time-skipping): a freeze pauses timers as a dispute
does, a dispute that ends in a cancelled campaign leaves nothing pending, and dispute ids
come from business data."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

from domain.campaign import (
    Action,
    DeliverableAction,
    RequestChanges,
    SetFrozen,
    SubmitDeliverable,
)
from domain.dispute import AcceptOffer, MakeOffer, PartyAction, Respond
from tests.workflows.test_campaign import (
    BRAND,
    CREATOR,
    accept_and_fund,
    new_campaign,
    start,
    state,
)
from tests.workflows.test_dispute import _settled, file, funded
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow


async def _freeze(campaign, frozen: bool) -> None:
    await campaign.execute_update(
        CampaignWorkflow.set_frozen, SetFrozen(frozen=frozen, reason="charge dispute dp_1")
    )


async def test_a_freeze_pauses_the_review_timer(env, task_queue):
    campaign = await funded(env, task_queue, amounts=(10_000,))
    await campaign.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.io")
    )
    await env.sleep(timedelta(days=4))  # one day of review left
    await _freeze(campaign, True)
    await env.sleep(timedelta(days=20))
    frozen = await state(campaign)
    assert frozen["status"] == "frozen"
    # The brand could not request changes while frozen, so silence is not approval.
    assert frozen["deliverables"][0]["status"] == "submitted"
    await _freeze(campaign, False)
    await env.sleep(timedelta(hours=23))
    assert (await state(campaign))["deliverables"][0]["status"] == "submitted"
    await env.sleep(timedelta(hours=2))
    item = (await state(campaign))["deliverables"][0]
    assert item["status"] == "approved" and item["approved_by"] == "auto"


async def test_a_freeze_keeps_a_creator_from_going_overdue(env, task_queue):
    now = await env.get_current_time()
    campaign = await start(
        env, task_queue, new_campaign(amounts=(10_000,), due_at=now + timedelta(days=7))
    )
    await accept_and_fund(campaign)
    await env.sleep(timedelta(days=5))  # two days left to deliver
    await _freeze(campaign, True)
    await env.sleep(timedelta(days=30))
    assert (await state(campaign))["deliverables"][0]["status"] == "pending"
    await _freeze(campaign, False)
    await env.sleep(timedelta(days=1, hours=23))
    assert (await state(campaign))["deliverables"][0]["status"] == "pending"
    await env.sleep(timedelta(hours=2))
    assert (await state(campaign))["deliverables"][0]["status"] == "overdue"


async def test_withdrawal_after_cancellation_by_silence_refunds_what_resumed(env, task_queue):
    now = await env.get_current_time()
    campaign = await start(
        env, task_queue, new_campaign(amounts=(10_000, 5_000), due_at=now + timedelta(days=30))
    )
    await accept_and_fund(campaign)
    await campaign.execute_update(CampaignWorkflow.cancel, Action(actor_id=BRAND))
    dispute = await file(env, campaign, actor=CREATOR, claim=(10_000, 0), deliverables=[0])
    await env.sleep(timedelta(days=3))  # P2D cancellation window: confirmed by silence
    cancelled = await state(campaign)
    assert cancelled["status"] == "disputed"
    assert [d["status"] for d in cancelled["deliverables"]] == ["disputed", "refunded"]

    await dispute.execute_update(DisputeWorkflow.withdraw, PartyAction(actor_id=CREATOR))
    after = await _settled(campaign)
    assert after["status"] == "cancelled"
    assert [d["status"] for d in after["deliverables"]] == ["refunded", "refunded"]
    assert after["escrow"]["held"] == 0 and after["escrow"]["refunded_to_brand"] == 15_000
    # Nothing left to wait for: the workflow ends instead of spinning on a past due date.
    await env.sleep(timedelta(days=60))
    assert (await campaign.result())["status"] == "cancelled"


async def test_dispute_ids_derive_from_the_campaign(env, task_queue):
    campaign = await funded(env, task_queue)
    suffix = campaign.id.removeprefix("campaign-cmp_")
    first = await file(env, campaign, claim=(0, 15_000))
    assert first.id == f"dispute-dsp_{suffix}_1"
    await first.execute_update(DisputeWorkflow.withdraw, PartyAction(actor_id=BRAND))
    await _settled(campaign)
    second = await file(env, campaign, claim=(0, 15_000))
    assert second.id == f"dispute-dsp_{suffix}_2"


async def _run_histories(env, workflow_id: str) -> list:
    """Every run's history, first to current, following continue-as-new."""
    described = await env.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    histories, run_id = [], described.workflow_execution_info.first_run_id
    while run_id:
        handle = env.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        histories.append(history)
        last = history.events[-1]
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = (
            attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return histories


async def test_a_long_campaign_continues_as_new_with_its_whole_state(env, task_queue):
    new = new_campaign(amounts=(10_000, 5_000), max_revisions=30)
    campaign = await start(env, task_queue, new.model_copy(update={"history_limit": 80}))
    await accept_and_fund(campaign)
    work = {"actor_id": CREATOR, "url": "https://x.io/post"}
    for round_ in range(12):  # a long back-and-forth on deliverable 0
        await campaign.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=0, **work))
        await campaign.execute_update(
            CampaignWorkflow.request_changes,
            RequestChanges(actor_id=BRAND, index=0, reason=f"round {round_}"),
        )
    await campaign.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=0, **work))
    before = await state(campaign)
    assert len(await _run_histories(env, campaign.id)) > 1
    # Everything came across: revisions, the running review timer, the escrow.
    assert before["deliverables"][0]["revisions"] == 12
    assert before["escrow"]["held"] == 15_000
    await env.sleep(timedelta(days=5, hours=1))  # the review window runs on in the new run
    item = (await state(campaign))["deliverables"][0]
    assert item["status"] == "approved" and item["approved_by"] == "auto"
    # Every history stays under the limit it was given (plus one task's worth of events).
    for history in await _run_histories(env, campaign.id):
        assert len(history.events) < 80 + 20


async def test_a_long_dispute_continues_as_new_and_its_campaign_still_settles(env, task_queue):
    # The dispute inherits its campaign's history limit.
    new = new_campaign(amounts=(10_000, 5_000)).model_copy(update={"history_limit": 80})
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    dispute = await file(env, campaign, claim=(0, 15_000))
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did post")
    )
    for n in range(40):
        await dispute.execute_update(
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=CREATOR, release_to_creator=15_000 - n, refund_to_brand=n),
        )
    assert len(await _run_histories(env, dispute.id)) > 1
    offers = (await dispute.query(DisputeWorkflow.state))["offers"]
    assert len(offers) == 40 and offers[-1]["status"] == "open"
    await dispute.execute_update(
        DisputeWorkflow.accept_offer, AcceptOffer(actor_id=BRAND, offer_id=offers[-1]["id"])
    )
    settled = await _settled(campaign)
    assert settled["escrow"]["refunded_to_brand"] == 39
    assert [d["status"] for d in settled["deliverables"]] == ["settled", "settled"]


async def test_update_answers_stay_small_whatever_the_campaign_holds(env, task_queue):
    # Each Update's answer is stored in the history: it must not grow with the campaign.
    campaign = await start(env, task_queue, new_campaign(amounts=tuple([1_000] * 40)))
    await accept_and_fund(campaign)
    metrics = {f"metric_{n}": n for n in range(50)}
    for index in range(40):
        await campaign.execute_update(
            CampaignWorkflow.submit,
            SubmitDeliverable(
                actor_id=CREATOR,
                index=index,
                url="https://x.io/p",
                notes="n" * 2000,
                metrics=metrics,
            ),
        )
    history = await campaign.fetch_history()
    answers = [
        e.workflow_execution_update_completed_event_attributes.outcome.success
        for e in history.events
        if e.HasField("workflow_execution_update_completed_event_attributes")
    ]
    assert len(answers) == 42  # accept, fund, 40 submissions
    assert max(answers[i].ByteSize() for i in range(len(answers))) < 200
    # The state keeps each deliverable's latest URL and digest, not the notes or metrics.
    latest = (await state(campaign))["deliverables"][0]["submissions"]
    assert len(latest) == 1 and latest[0]["notes"] == "" and len(latest[0]["sha256"]) == 64


async def test_an_update_retried_after_continue_as_new_gets_its_first_answer(env, task_queue):
    # The API derives an Update's id from the client's Idempotency-Key. Temporal dedupes ids
    # within a run only, so the workflow carries its recent answers into the next run.
    new = new_campaign(amounts=(10_000, 5_000), max_revisions=30)
    campaign = await start(env, task_queue, new.model_copy(update={"history_limit": 80}))
    await accept_and_fund(campaign)
    work = {"actor_id": CREATOR, "url": "https://x.io/post"}
    submit_1 = SubmitDeliverable(index=1, **work)
    first = await campaign.execute_update(CampaignWorkflow.submit, submit_1, id="key-submit-1")
    for round_ in range(12):
        await campaign.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=0, **work))
        await campaign.execute_update(
            CampaignWorkflow.request_changes,
            RequestChanges(actor_id=BRAND, index=0, reason=f"round {round_}"),
        )
    assert len(await _run_histories(env, campaign.id)) > 1
    again = await campaign.execute_update(CampaignWorkflow.submit, submit_1, id="key-submit-1")
    assert again == first
    assert (await state(campaign))["deliverables"][1]["revisions"] == 0


async def test_a_dispute_update_retried_after_continue_as_new_acts_once(env, task_queue):
    new = new_campaign(amounts=(10_000, 5_000)).model_copy(update={"history_limit": 80})
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    dispute = await file(env, campaign, claim=(0, 15_000))
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did post")
    )
    offer = MakeOffer(actor_id=CREATOR, release_to_creator=15_000, refund_to_brand=0)
    first = await dispute.execute_update(DisputeWorkflow.make_offer, offer, id="key-offer")
    for n in range(40):
        await dispute.execute_update(
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=BRAND, release_to_creator=n, refund_to_brand=15_000 - n),
        )
    assert len(await _run_histories(env, dispute.id)) > 1
    again = await dispute.execute_update(DisputeWorkflow.make_offer, offer, id="key-offer")
    assert again == first
    offers = (await dispute.query(DisputeWorkflow.state))["offers"]
    assert len(offers) == 41


async def test_updates_arriving_during_continue_as_new_are_not_lost(env, task_queue):
    new = new_campaign(amounts=tuple([1_000] * 30)).model_copy(update={"history_limit": 60})
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    gate = asyncio.Semaphore(4)  # Updates keep arriving while the runs hand over

    async def deliver(index: int) -> None:
        async with gate:
            work = SubmitDeliverable(actor_id=CREATOR, index=index, url="https://x.io/post")
            await campaign.execute_update(CampaignWorkflow.submit, work)
            await campaign.execute_update(
                CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=index)
            )

    await asyncio.gather(*(deliver(i) for i in range(30)))
    assert len(await _run_histories(env, campaign.id)) > 2
    view = await state(campaign)
    assert [d["status"] for d in view["deliverables"]] == ["approved"] * 30
