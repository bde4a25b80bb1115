"""Issue #10 item 1: a chargeback freeze that lands as a dispute is decided holds the
settlement; the money moves only once the freeze lifts, and exactly once."""

from __future__ import annotations

import asyncio

import pytest

from domain.campaign import SetFrozen
from domain.dispute import Respond
from tests.workflows.test_campaign import CREATOR, state
from tests.workflows.test_dispute import _settled, file, funded
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow


@pytest.mark.parametrize("freeze_first", [True, False])
async def test_a_freeze_racing_a_decision_holds_the_settlement(env, task_queue, freeze_first):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)  # the brand claims the whole 15,000 back
    freeze = campaign.execute_update(
        CampaignWorkflow.set_frozen, SetFrozen(frozen=True, reason="charge dispute dp_1")
    )
    concede = dispute.execute_update(
        DisputeWorkflow.respond,
        Respond(actor_id=CREATOR, statement="fair", accept_claim=True),
    )
    if freeze_first:
        await freeze
        await concede
    else:
        await asyncio.gather(concede, freeze)
    await dispute.result()
    held = await state(campaign)
    assert held["status"] == "frozen" and held["escrow"]["refunded_to_brand"] == 0
    assert held["escrow"]["held"] == 15_000 and held["dispute_id"] is not None

    await campaign.execute_update(CampaignWorkflow.set_frozen, SetFrozen(frozen=False))
    settled = await _settled(campaign)
    assert settled["escrow"]["refunded_to_brand"] == 15_000 and settled["escrow"]["held"] == 0
