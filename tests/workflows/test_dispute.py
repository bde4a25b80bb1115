"""DisputeWorkflow: every stage, exit and deadline of SPEC §4 at default lengths
(time-skipping), and the campaign's freeze, resume and settlement around it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from db.models import Notification, Party
from domain.campaign import DeliverableAction, SubmitDeliverable
from domain.dispute import (
    AcceptOffer,
    AddEvidence,
    AssignMediator,
    EvidenceItem,
    FileDispute,
    IssueRuling,
    MakeOffer,
    PartyAction,
    ProposeSettlement,
    Respond,
    Split,
)
from domain.terms import Terms
from tests.workflows.test_campaign import (
    BRAND,
    CREATOR,
    accept_and_fund,
    new_campaign,
    start,
    state,
)  # noqa: F401,E501
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

MEDIATOR, OTHER_MEDIATOR = "pty_mediator", "pty_mediator2"


async def funded(env, task_queue, amounts=(10_000, 5_000), **terms):
    handle = await start(env, task_queue, new_campaign(amounts=amounts, **terms))
    await accept_and_fund(handle)
    return handle


async def file(env, campaign, actor=BRAND, claim=(0, 15_000), deliverables=None):
    filed = await campaign.execute_update(
        CampaignWorkflow.file_dispute,
        FileDispute(
            actor_id=actor,
            reason="not delivered",
            deliverables=deliverables,
            claim=Split(release_to_creator=claim[0], refund_to_brand=claim[1]),
            statement="Nothing was posted.",
        ),
    )
    return env.client.get_workflow_handle(f"dispute-{filed['dispute_id']}")


async def refused(call, code: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    assert info.value.cause.type == code, info.value.cause
    return info.value.cause.message


async def add_mediators(sessionmaker, count: int = 2) -> list[str]:
    """Mediator parties in the database: the ones a role-wide notification reaches."""
    mediators = [f"pty_med_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    async with sessionmaker() as session:
        for mediator_id in mediators:
            session.add(
                Party(
                    id=mediator_id,
                    name="M",
                    role="mediator",
                    email="m@x.io",
                    api_key_hash=mediator_id,
                )
            )
        await session.commit()
    return mediators


async def to_mediation(dispute):
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did")
    )
    await dispute.execute_update(DisputeWorkflow.escalate, PartyAction(actor_id=BRAND))
    await dispute.execute_update(
        DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=MEDIATOR)
    )


async def test_no_response_in_p5d_grants_the_claim_by_default(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign, claim=(3_000, 12_000))
    assert (await state(campaign))["status"] == "disputed"
    await env.sleep(timedelta(days=4, hours=23))
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "awaiting_response"
    await env.sleep(timedelta(hours=2))
    outcome = (await dispute.query(DisputeWorkflow.state))["outcome"]
    assert outcome == {"release_to_creator": 3_000, "refund_to_brand": 12_000, "by": "default"}
    settled = await _settled(campaign)
    # 3000 to the creator side through the 10% fee; 12000 back to the brand.
    assert settled["escrow"] == {
        "funded": 15_000,
        "held": 0,
        "released_to_creator": 2_700,
        "agency_commission": 0,
        "platform_fee": 300,
        "refunded_to_brand": 12_000,
        "charged_back": 0,
    }
    assert [d["status"] for d in settled["deliverables"]] == ["settled", "settled"]
    assert settled["status"] == "completed"


async def _settled(campaign) -> dict:
    for _ in range(200):
        current = await state(campaign)
        if current["dispute_id"] is None:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(current)


async def test_respondent_accepts_the_claim(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign, actor=CREATOR, claim=(15_000, 0))
    await refused(
        dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="x")),
        "forbidden",
    )
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=BRAND, statement="fair", accept_claim=True)
    )
    done = await dispute.query(DisputeWorkflow.state)
    assert done["stage"] == "resolved" and done["outcome"]["by"] == "acceptance"
    settled = await _settled(campaign)
    assert settled["escrow"]["released_to_creator"] == 13_500


async def test_offer_accepted_is_an_agreement_and_splits_must_be_exact(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    message = await refused(
        dispute.execute_update(
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=CREATOR, release_to_creator=10_000, refund_to_brand=4_000),
        ),
        "validation_error",
    )
    assert "15000" in message
    offered = await dispute.execute_update(
        DisputeWorkflow.make_offer,
        MakeOffer(actor_id=CREATOR, release_to_creator=9_000, refund_to_brand=6_000),
    )
    offer_id = offered["offer_id"]
    assert (await dispute.query(DisputeWorkflow.state))["offers"][-1]["id"] == offer_id
    await refused(
        dispute.execute_update(
            DisputeWorkflow.accept_offer, AcceptOffer(actor_id=CREATOR, offer_id=offer_id)
        ),
        "forbidden",
    )
    await dispute.execute_update(
        DisputeWorkflow.accept_offer, AcceptOffer(actor_id=BRAND, offer_id=offer_id)
    )
    done = await dispute.query(DisputeWorkflow.state)
    assert done["outcome"] == {
        "release_to_creator": 9_000,
        "refund_to_brand": 6_000,
        "by": "agreement",
    }
    settled = await _settled(campaign)
    assert (
        settled["escrow"]["released_to_creator"] == 8_100
        and settled["escrow"]["platform_fee"] == 900
    )


async def test_crossing_acceptances_make_exactly_one_agreement(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    a = await dispute.execute_update(
        DisputeWorkflow.make_offer,
        MakeOffer(actor_id=CREATOR, release_to_creator=8_000, refund_to_brand=7_000),
    )
    b = await dispute.execute_update(
        DisputeWorkflow.make_offer,
        MakeOffer(actor_id=BRAND, release_to_creator=7_000, refund_to_brand=8_000),
    )
    creator_offer, brand_offer = a["offer_id"], b["offer_id"]
    results = await asyncio.gather(
        dispute.execute_update(
            DisputeWorkflow.accept_offer, AcceptOffer(actor_id=BRAND, offer_id=creator_offer)
        ),
        dispute.execute_update(
            DisputeWorkflow.accept_offer, AcceptOffer(actor_id=CREATOR, offer_id=brand_offer)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].cause.type == "invalid_state"
    final = await dispute.query(DisputeWorkflow.state)
    assert [o["status"] for o in final["offers"]].count("accepted") == 1
    settled = await _settled(campaign)
    assert settled["escrow"]["refunded_to_brand"] == final["outcome"]["refund_to_brand"]


async def test_negotiation_deadline_escalates_and_mediator_overdue_is_flagged(
    env, task_queue, sessionmaker
):
    mediators = await add_mediators(sessionmaker)
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    await env.sleep(timedelta(days=6, hours=23))
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "negotiation"
    await env.sleep(timedelta(hours=2))  # P7D passed
    current = await dispute.query(DisputeWorkflow.state)
    assert current["stage"] == "mediation" and not current["mediator_overdue"]
    await env.sleep(timedelta(days=2, hours=1))  # P2D mediation window passed
    current = await dispute.query(DisputeWorkflow.state)
    assert current["stage"] == "mediation" and current["mediator_overdue"] is True
    assert current["outcome"] is None  # no automatic decision
    async with sessionmaker() as session:
        query = select(Notification.party_id).where(
            Notification.dispute_id == current["id"],
            Notification.kind == "dispute.mediator_overdue",
        )
        told = set((await session.exec(query)).all())
    assert set(mediators) <= told  # every mediator, not only an assigned one


async def test_proposal_silence_counts_as_acceptance(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await to_mediation(dispute)
    await refused(
        dispute.execute_update(
            DisputeWorkflow.propose_settlement,
            ProposeSettlement(
                mediator_id=OTHER_MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000
            ),
        ),
        "forbidden",
    )
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(mediator_id=MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000),
    )
    await dispute.execute_update(DisputeWorkflow.accept_proposal, PartyAction(actor_id=BRAND))
    await env.sleep(timedelta(days=1, hours=23))
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "awaiting_acceptance"
    await env.sleep(timedelta(hours=2))
    outcome = (await dispute.query(DisputeWorkflow.state))["outcome"]
    assert outcome == {
        "release_to_creator": 5_000,
        "refund_to_brand": 10_000,
        "by": "mediated_agreement",
    }


async def test_both_accept_the_proposal(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await to_mediation(dispute)
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(mediator_id=MEDIATOR, release_to_creator=6_000, refund_to_brand=9_000),
    )
    await dispute.execute_update(DisputeWorkflow.accept_proposal, PartyAction(actor_id=CREATOR))
    await dispute.execute_update(DisputeWorkflow.accept_proposal, PartyAction(actor_id=BRAND))
    done = await dispute.query(DisputeWorkflow.state)
    assert done["outcome"]["by"] == "mediated_agreement"


async def test_rejection_goes_to_arbitration_overdue_then_ruling(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await to_mediation(dispute)
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(mediator_id=MEDIATOR, release_to_creator=6_000, refund_to_brand=9_000),
    )
    await dispute.execute_update(DisputeWorkflow.reject_proposal, PartyAction(actor_id=CREATOR))
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "arbitration"
    await env.sleep(timedelta(days=5, hours=1))  # P5D arbitration window passed
    current = await dispute.query(DisputeWorkflow.state)
    assert current["stage"] == "arbitration" and current["mediator_overdue"] is True
    await refused(
        dispute.execute_update(
            DisputeWorkflow.issue_ruling,
            IssueRuling(
                mediator_id=MEDIATOR, release_to_creator=1, refund_to_brand=1, rationale="x"
            ),
        ),
        "validation_error",
    )
    await dispute.execute_update(
        DisputeWorkflow.issue_ruling,
        IssueRuling(
            mediator_id=MEDIATOR, release_to_creator=7_500, refund_to_brand=7_500, rationale="half"
        ),
    )
    done = await dispute.query(DisputeWorkflow.state)
    assert done["outcome"]["by"] == "ruling" and done["ruling"]["rationale"] == "half"
    settled = await _settled(campaign)
    assert settled["escrow"]["refunded_to_brand"] == 7_500


async def test_two_mediators_self_assigning_one_wins(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    await dispute.execute_update(DisputeWorkflow.escalate, PartyAction(actor_id=CREATOR))
    results = await asyncio.gather(
        dispute.execute_update(
            DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=MEDIATOR)
        ),
        dispute.execute_update(
            DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=OTHER_MEDIATOR)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    (lost,) = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert lost.cause.type == "invalid_state"


async def test_withdrawal_resumes_timers_with_the_time_they_had_left(env, task_queue):
    campaign = await funded(env, task_queue, amounts=(10_000,))
    await campaign.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.io")
    )
    await env.sleep(timedelta(days=4))  # 1 day of the P5D review window left
    dispute = await file(env, campaign, claim=(0, 10_000))
    await env.sleep(timedelta(days=3))
    frozen = await state(campaign)
    assert frozen["deliverables"][0]["status"] == "disputed"  # not auto-approved meanwhile
    await dispute.execute_update(DisputeWorkflow.withdraw, PartyAction(actor_id=BRAND))
    resumed = await _settled(campaign)
    assert resumed["deliverables"][0]["status"] == "submitted"
    await env.sleep(timedelta(hours=23))
    assert (await state(campaign))["deliverables"][0]["status"] == "submitted"
    await env.sleep(timedelta(hours=2))
    item = (await state(campaign))["deliverables"][0]
    assert item["status"] == "approved" and item["approved_by"] == "auto"


async def test_filing_rules(env, task_queue):
    campaign = await funded(env, task_queue)
    await refused(file(env, campaign, claim=(1, 1)), "validation_error")
    await refused(file(env, campaign, actor="pty_stranger"), "forbidden")
    await file(env, campaign, claim=(0, 10_000), deliverables=[0])
    await refused(file(env, campaign, claim=(0, 5_000), deliverables=[1]), "dispute_open")
    # The other deliverable carries on meanwhile.
    await campaign.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=1, url="https://x.io")
    )
    await campaign.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=1)
    )
    after = await state(campaign)
    assert [d["status"] for d in after["deliverables"]] == ["disputed", "approved"]


async def test_agency_commission_on_the_creator_side_of_a_settlement(env, task_queue):
    new = new_campaign(amounts=(20_000,)).model_copy(
        update={
            "agency_id": "pty_agency",
            "agency_represents": "creator",
            "terms": Terms(agency_commission_bps=1500),
        }
    )
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    dispute = await file(env, campaign, actor="pty_agency", claim=(12_345, 7_655))
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=BRAND, statement="ok", accept_claim=True)
    )
    settled = await _settled(campaign)
    assert settled["escrow"] == {
        "funded": 20_000,
        "held": 0,
        "released_to_creator": 9_260,
        "agency_commission": 1_851,
        "platform_fee": 1_234,
        "refunded_to_brand": 7_655,
        "charged_back": 0,
    }


async def test_evidence_offers_and_a_ruling_stay_under_300_events(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="no"))
    for i in range(20):
        item = EvidenceItem(
            id=f"evd_{i}",
            kind="text",
            submitted_by=BRAND if i % 2 else CREATOR,
            at="2026-01-01T00:00:00Z",
            sha256="0" * 64,
            text=f"note {i}",
        )
        await dispute.execute_update(
            DisputeWorkflow.add_evidence, AddEvidence(actor_id=item.submitted_by, item=item)
        )
    for i in range(10):
        actor = BRAND if i % 2 else CREATOR
        await dispute.execute_update(
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=actor, release_to_creator=i, refund_to_brand=15_000 - i),
        )
    await dispute.execute_update(DisputeWorkflow.escalate, PartyAction(actor_id=BRAND))
    await dispute.execute_update(
        DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=MEDIATOR)
    )
    await dispute.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(mediator_id=MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000),
    )
    await dispute.execute_update(DisputeWorkflow.reject_proposal, PartyAction(actor_id=BRAND))
    await dispute.execute_update(
        DisputeWorkflow.issue_ruling,
        IssueRuling(
            mediator_id=MEDIATOR, release_to_creator=5_000, refund_to_brand=10_000, rationale="r"
        ),
    )
    events = await closed_history_length(dispute)
    assert events < 300, events
    await _settled(campaign)


async def closed_history_length(handle) -> int:
    """Waits for the workflow's completion event (handles from get_workflow_handle do not
    drive the time-skipping server's result(), so poll the history instead)."""
    for _ in range(200):
        events = (await handle.fetch_history()).events
        if events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return len(events)
        await asyncio.sleep(0.05)
    raise AssertionError("workflow did not complete")
