"""A refund or settlement leg the rail refuses for good (issue #10: a creator not yet
onboarded, a charge under dispute) is owed, visibly, without holding the campaign: the
parties go on acting, and the leg goes out once when the payouts are retried."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from activities.rails import RailRefused, SandboxRail
from domain.campaign import Action, DeliverableAction, RetryPayouts, SubmitDeliverable
from domain.dispute import Respond
from tests.workflows.test_campaign import BRAND, CREATOR, state
from tests.workflows.test_dispute import _settled, file, funded
from worker import build_worker
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

# What an Update that is not held behind a parked leg needs, many times over.
PROMPTLY = 20


class RefusingRail(SandboxRail):
    """Refuses, while told to, transfers to the creator and refunds to the brand."""

    def __init__(self, sessionmaker) -> None:
        super().__init__(sessionmaker)
        self.refuse_creator = self.refuse_refunds = False

    async def transfer(self, key, amount, currency, party_id, account, group):
        if self.refuse_creator and party_id == CREATOR:
            raise RailRefused("payouts are not enabled on the creator's account")
        return await super().transfer(key, amount, currency, party_id, account, group)

    async def refund(self, key, charge_reference, amount):
        if self.refuse_refunds:
            raise RailRefused("the charge is disputed")
        return await super().refund(key, charge_reference, amount)


@pytest.fixture
async def refusing(time_env, settings, sessionmaker, task_queue):
    rail = RefusingRail(sessionmaker)
    async with build_worker(time_env.client, settings, sessionmaker, task_queue, rail=rail):
        yield time_env, rail


async def _submit(campaign, index: int) -> None:
    work = SubmitDeliverable(actor_id=CREATOR, index=index, url="https://x.io/p")
    await asyncio.wait_for(campaign.execute_update(CampaignWorkflow.submit, work), PROMPTLY)


async def test_a_refused_settlement_release_is_owed_and_the_campaign_goes_on(refusing, task_queue):
    env, rail = refusing
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign, claim=(4_000, 6_000), deliverables=[0])
    rail.refuse_creator = True
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="ok", accept_claim=True)
    )
    settled = await _settled(campaign)
    assert settled["deliverables"][0]["status"] == "settled"
    (owed,) = settled["owed_payouts"]
    assert owed["kind"] == "release" and owed["amount"] == 4_000
    assert "not enabled" in owed["reason"]
    # The brand's refund went; the creator's 4,000 stays held beside deliverable 1's money.
    assert settled["escrow"]["refunded_to_brand"] == 6_000
    assert settled["escrow"]["held"] == 5_000 + 4_000
    await _submit(campaign, 1)  # not queued behind the refused leg

    rail.refuse_creator = False
    await campaign.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts(reason="KYC"))
    paid = await state(campaign)
    assert paid["owed_payouts"] == []
    assert paid["escrow"]["held"] == 5_000
    assert paid["escrow"]["released_to_creator"] + paid["escrow"]["platform_fee"] == 4_000


async def test_a_refused_refund_is_owed_and_goes_once_on_retry(refusing, task_queue):
    env, rail = refusing
    campaign = await funded(env, task_queue)
    await _submit(campaign, 1)
    await campaign.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=1)
    )
    rail.refuse_refunds = True
    await campaign.execute_update(CampaignWorkflow.cancel, Action(actor_id=BRAND))
    await asyncio.wait_for(
        campaign.execute_update(CampaignWorkflow.cancel, Action(actor_id=CREATOR)), PROMPTLY
    )
    view = await state(campaign)
    assert view["status"] == "cancelled"
    assert view["deliverables"][0]["status"] == "refunded"
    assert [(o["kind"], o["amount"]) for o in view["owed_payouts"]] == [("refund", 10_000)]
    assert view["escrow"]["held"] == 15_000 and view["escrow"]["refunded_to_brand"] == 0
    # Approved work still clears and is paid while the refund is owed.
    await env.sleep(timedelta(days=2, hours=1))
    view = await state(campaign)
    assert view["deliverables"][1]["status"] == "released"
    assert view["escrow"]["held"] == 10_000

    await campaign.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts())
    still = await state(campaign)  # refused again: still owed, with the rail's reason
    assert len(still["owed_payouts"]) == 1 and still["escrow"]["held"] == 10_000
    rail.refuse_refunds = False
    await campaign.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts())
    assert (await campaign.result())["escrow"]["refunded_to_brand"] == 10_000
    paid = await state(campaign)
    assert paid["owed_payouts"] == [] and paid["escrow"]["held"] == 0
