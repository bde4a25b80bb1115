"""Reminders before every deadline (SPEC §3, §6): 24 h before it, or at half the window when
shorter, to whoever must act, and never once the step is done. Time-skipping server; the
reminders are read from the inbox the records activity writes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from db.models import Notification, as_utc
from domain.campaign import AcceptCampaign, DeliverableAction, SubmitDeliverable, SubmitReview
from domain.dispute import AssignMediator, PartyAction, ProposeSettlement, Respond
from tests.workflows.test_campaign import BRAND, CREATOR, accept_and_fund, new_campaign, start
from tests.workflows.test_dispute import MEDIATOR, add_mediators, file, funded
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow


async def reminders(sessionmaker, source_id: str) -> list[tuple[str, str, datetime]]:
    """(kind, recipient, sent at) of every reminder of a campaign or dispute, oldest first."""
    column = Notification.dispute_id if source_id.startswith("dsp") else Notification.campaign_id
    async with sessionmaker() as session:
        rows = await session.exec(
            select(Notification)
            .where(column == source_id, Notification.kind.startswith("reminder."))
            .order_by(Notification.seq)
        )
        return [(n.kind, n.party_id, as_utc(n.created_at)) for n in rows.all()]


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def assert_reminded(sent, *expected) -> None:
    """Exactly these reminders, each at its moment: not before, and within the moment the
    test server takes to fire a timer (milliseconds)."""
    assert [(kind, party) for kind, party, _ in sent] == [(k, p) for k, p, _ in expected]
    for (_, _, when), (_, _, due) in zip(sent, expected, strict=True):
        assert due <= when < due + timedelta(seconds=1), (when, due)


async def test_acceptance_reminder_24h_before_a_p3d_deadline(env, task_queue, sessionmaker):
    new = new_campaign()
    handle = await start(env, task_queue, new)
    accept_by = at((await handle.query(CampaignWorkflow.state))["accept_by"])
    await env.sleep(timedelta(days=1, hours=23))
    assert await reminders(sessionmaker, new.id) == []
    await env.sleep(timedelta(hours=2))
    assert_reminded(
        await reminders(sessionmaker, new.id),
        ("reminder.acceptance", CREATOR, accept_by - timedelta(hours=24)),
    )


async def test_half_window_when_shorter_than_48h(env, task_queue, sessionmaker):
    new = new_campaign(acceptance_window=timedelta(hours=10))
    handle = await start(env, task_queue, new)
    accept_by = at((await handle.query(CampaignWorkflow.state))["accept_by"])
    await env.sleep(timedelta(hours=4, minutes=59))
    assert await reminders(sessionmaker, new.id) == []
    await env.sleep(timedelta(minutes=2))
    assert_reminded(
        await reminders(sessionmaker, new.id),
        ("reminder.acceptance", CREATOR, accept_by - timedelta(hours=5)),
    )
    assert (await handle.result())["status"] == "expired"


async def test_no_reminder_once_the_step_is_done(env, task_queue, sessionmaker):
    """Accepted before its reminder: no acceptance reminder, ever; the brand is reminded to
    fund instead. A submission approved early gets no review reminder."""
    new = new_campaign(amounts=(10_000,))
    handle = await start(env, task_queue, new)
    await env.sleep(timedelta(days=1))
    contract = (await handle.query(CampaignWorkflow.state))["contract_hash"]
    await handle.execute_update(
        CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
    )
    accepted = await handle.query(CampaignWorkflow.state)
    await env.sleep(timedelta(days=2, hours=1))  # past where the acceptance reminder was due
    fund_by = at(accepted["fund_by"])
    assert_reminded(
        await reminders(sessionmaker, new.id),
        ("reminder.funding", BRAND, fund_by - timedelta(hours=24)),
    )
    state = await handle.query(CampaignWorkflow.state)
    assert state["status"] == "awaiting_funding"


async def test_review_reminder_to_the_brand_only_while_it_is_pending(env, task_queue, sessionmaker):
    new = new_campaign(amounts=(10_000, 5_000))
    handle = await start(env, task_queue, new)
    await accept_and_fund(handle)
    for index in (0, 1):
        await handle.execute_update(
            CampaignWorkflow.submit,
            SubmitDeliverable(actor_id=CREATOR, index=index, url=f"https://x.io/{index}"),
        )
    await handle.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    state = await handle.query(CampaignWorkflow.state)
    review_due = at(state["deliverables"][1]["review_due_at"])
    await env.sleep(timedelta(days=5, hours=1))  # P5D review window over
    sent = await reminders(sessionmaker, new.id)
    assert_reminded(sent, ("reminder.review", BRAND, review_due - timedelta(hours=24)))


async def test_review_period_reminder_goes_to_the_side_yet_to_review(env, task_queue, sessionmaker):
    new = new_campaign(
        amounts=(10_000,), review_window=timedelta(seconds=1), clearing_period=timedelta(seconds=1)
    )
    handle = await start(env, task_queue, new)
    await accept_and_fund(handle)
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.io")
    )
    await env.sleep(timedelta(seconds=5))
    state = await handle.query(CampaignWorkflow.state)
    assert state["status"] == "completed"
    await handle.execute_update(
        CampaignWorkflow.review, SubmitReview(actor_id=BRAND, rating=5, comment="Great")
    )
    await env.sleep(timedelta(days=14))
    closes = at(state["reviews_close_at"])
    sent = [r for r in await reminders(sessionmaker, new.id) if r[0] == "reminder.reviews"]
    assert_reminded(sent, ("reminder.reviews", CREATOR, closes - timedelta(hours=24)))


async def test_dispute_reminds_the_respondent_then_both_in_negotiation(
    env, task_queue, sessionmaker
):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    filed = await dispute.query(DisputeWorkflow.state)
    await env.sleep(timedelta(days=4, hours=1))  # P5D response window: reminder at 4 days
    sent = await reminders(sessionmaker, filed["id"])
    assert_reminded(
        sent, ("reminder.response", CREATOR, at(filed["deadline"]) - timedelta(hours=24))
    )
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did post")
    )
    responded = await dispute.query(DisputeWorkflow.state)
    await env.sleep(timedelta(days=6, hours=1))  # P7D negotiation: reminder at 6 days
    negotiation_due = at(responded["deadline"]) - timedelta(hours=24)
    assert_reminded(
        (await reminders(sessionmaker, filed["id"]))[1:],
        ("reminder.negotiation", BRAND, negotiation_due),
        ("reminder.negotiation", CREATOR, negotiation_due),
    )


async def test_mediators_are_reminded_unassigned_all_then_the_assigned_one(
    env, task_queue, sessionmaker
):
    mediators = await add_mediators(sessionmaker)
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    await dispute.execute_update(DisputeWorkflow.escalate, PartyAction(actor_id=BRAND))
    escalated = await dispute.query(DisputeWorkflow.state)
    await env.sleep(timedelta(days=1, hours=1))  # P2D mediation: reminder at 1 day
    sent = await reminders(sessionmaker, escalated["id"])
    assert {kind for kind, _, _ in sent} == {"reminder.mediation"}
    assert set(mediators) <= {party for _, party, _ in sent}  # the whole queue
    await dispute.execute_update(
        DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=MEDIATOR)
    )
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(
            mediator_id=MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000, rationale="r"
        ),
    )
    # Rejected at once: no proposal reminder; the ruling's goes to the assigned mediator.
    await dispute.execute_update(DisputeWorkflow.reject_proposal, PartyAction(actor_id=CREATOR))
    ruling = await dispute.query(DisputeWorkflow.state)
    await env.sleep(timedelta(days=4, hours=1))  # P5D arbitration: reminder at 4 days
    later = (await reminders(sessionmaker, escalated["id"]))[len(sent) :]
    assert_reminded(
        later, ("reminder.arbitration", MEDIATOR, at(ruling["deadline"]) - timedelta(hours=24))
    )
