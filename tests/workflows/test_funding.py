"""Funding as Stripe models it (issue #10 items 2 and 5): a charge still `processing` is not
money yet; a charge whose answer was lost is found and applied, or refunded when the
campaign ends without it — never orphaned, never charged twice."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError

from activities.rails import SandboxRail
from db.models import LedgerEntry
from domain.campaign import AcceptCampaign, FundingSettled, FundRequest, SubmitDeliverable
from tests.workflows.test_campaign import BRAND, CREATOR, new_campaign, start, state
from tests.workflows.test_dispute import refused
from worker import build_worker
from workflows.campaign import CampaignWorkflow

SETTLING_METHOD = "pm_sepa_debit_processing"


async def accept(handle) -> None:
    contract = (await state(handle))["contract_hash"]
    await handle.execute_update(
        CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
    )


async def settling(env, task_queue):
    """A campaign funded with a method that settles later: `funding_pending`."""
    new = new_campaign()
    campaign = await start(env, task_queue, new)
    await accept(campaign)
    await campaign.execute_update(
        CampaignWorkflow.fund, FundRequest(actor_id=BRAND, payment_method=SETTLING_METHOD)
    )
    return new, campaign


async def fund_rows(sessionmaker, cid: str) -> list[tuple[str, str, str]]:
    async with sessionmaker() as session:
        rows = await session.exec(
            select(LedgerEntry).where(LedgerEntry.campaign_id == cid).order_by(LedgerEntry.id)
        )
        return [(e.idempotency_key.removeprefix(cid), e.kind, e.state) for e in rows.all()]


async def test_a_settling_charge_is_funding_pending_until_the_rail_confirms_it(
    env, task_queue, sessionmaker
):
    new, campaign = await settling(env, task_queue)
    pending = await state(campaign)
    assert pending["status"] == "funding_pending" and pending["escrow"]["funded"] == 0
    assert await fund_rows(sessionmaker, new.id) == [(":fund", "fund", "settling")]
    await refused(
        campaign.execute_update(
            CampaignWorkflow.submit,
            SubmitDeliverable(actor_id=CREATOR, index=0, url="https://x.example/p"),
        ),
        "invalid_state",
    )
    await refused(
        campaign.execute_update(
            CampaignWorkflow.funding_settled, FundingSettled(reference="pi_other", succeeded=True)
        ),
        "invalid_state",
    )
    reference = pending["funding_reference"]
    await campaign.execute_update(
        CampaignWorkflow.funding_settled, FundingSettled(reference=reference, succeeded=True)
    )
    active = await state(campaign)
    assert active["status"] == "active" and active["escrow"]["funded"] == 15_000
    assert await fund_rows(sessionmaker, new.id) == [(":fund", "fund", "succeeded")]
    # Stripe delivers events twice: the second finds nothing settling.
    await refused(
        campaign.execute_update(
            CampaignWorkflow.funding_settled, FundingSettled(reference=reference, succeeded=True)
        ),
        "invalid_state",
    )


async def test_a_failed_settling_charge_returns_to_awaiting_funding_under_a_new_key(
    env, task_queue, sessionmaker
):
    new, campaign = await settling(env, task_queue)
    reference = (await state(campaign))["funding_reference"]
    await campaign.execute_update(
        CampaignWorkflow.funding_settled,
        FundingSettled(reference=reference, succeeded=False, reason="insufficient funds"),
    )
    back = await state(campaign)
    assert back["status"] == "awaiting_funding" and back["escrow"]["funded"] == 0
    await campaign.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    assert (await state(campaign))["escrow"]["funded"] == 15_000
    assert await fund_rows(sessionmaker, new.id) == [
        (":fund", "fund", "failed"),
        (":fund:2", "fund", "succeeded"),
    ]


class LostAnswerRail(SandboxRail):
    """While `down`: charges, then the answer is lost (a timeout after the rail acted), and
    lookups time out too — Stripe slow past Parley's funding deadline. Counts charges."""

    def __init__(self, sessionmaker) -> None:
        super().__init__(sessionmaker)
        self.charges = 0
        self.down = True

    async def charge(self, *args):
        self.charges += 1
        reference = await super().charge(*args)
        if self.down:
            raise TimeoutError("the rail did not answer in time")
        return reference

    async def find_charge(self, key: str):
        if self.down:
            raise TimeoutError("the rail did not answer in time")
        return await super().find_charge(key)


@pytest.fixture
async def lost_answers(time_env, settings, sessionmaker, task_queue):
    rail = LostAnswerRail(sessionmaker)
    async with build_worker(time_env.client, settings, sessionmaker, task_queue, rail=rail):
        yield time_env, rail


async def unanswered_fund(env, task_queue):
    new = new_campaign()
    campaign = await start(env, task_queue, new)
    await accept(campaign)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await campaign.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    assert info.value.cause.type == "payment_unavailable"
    return new, campaign


async def test_a_charge_whose_answer_was_lost_is_refunded_when_the_campaign_expires(
    lost_answers, task_queue, sessionmaker
):
    env, rail = lost_answers
    started = time.monotonic()
    new, campaign = await unanswered_fund(env, task_queue)
    waited = await state(campaign)
    assert waited["status"] == "awaiting_funding" and waited["escrow"]["funded"] == 0
    rail.down = False
    await env.sleep(timedelta(days=4))  # past the funding window (P3D)
    ended = await state(campaign)
    assert ended["status"] == "expired", ended
    assert ended["escrow"]["funded"] == ended["escrow"]["refunded_to_brand"] == 15_000
    assert ended["escrow"]["held"] == 0
    rows = await fund_rows(sessionmaker, new.id)
    assert rows[0] == (":fund", "fund", "succeeded") and len(rows) == 3  # found, two refunds
    assert rail.charges >= 1 and len({key for key, _, _ in rows}) == 3
    assert {kind for _, kind, _ in rows[1:]} == {"refund"}
    print(f"unanswered funding took {time.monotonic() - started:.1f} s of wall time")


async def test_a_late_confirmation_of_a_lost_charge_funds_the_campaign(
    lost_answers, task_queue, sessionmaker
):
    env, rail = lost_answers
    new, campaign = await unanswered_fund(env, task_queue)
    charges = rail.charges
    await campaign.execute_update(
        CampaignWorkflow.funding_settled, FundingSettled(reference="pi_late", succeeded=True)
    )
    active = await state(campaign)
    assert active["status"] == "active" and active["escrow"]["funded"] == 15_000
    assert rail.charges == charges  # applied, not charged again
    assert await fund_rows(sessionmaker, new.id) == [(":fund", "fund", "succeeded")]
