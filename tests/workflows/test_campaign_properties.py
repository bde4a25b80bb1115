"""Random sequences of party actions, freezes, disputes and the passing of time (time-skipping):
after every step the escrow adds up, `held` is what the open deliverables hold, nothing is
stranded, and the workflow keeps answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.campaign import (
    FINAL,
    UNAPPROVED,
    Action,
    CampaignStatus,
    DeliverableAction,
    DeliverableStatus,
    RequestChanges,
    SetFrozen,
    SubmitDeliverable,
)
from domain.dispute import FileDispute, PartyAction, Respond, Split
from domain.money import Escrow
from tests.workflows.test_campaign import BRAND, CREATOR, accept_and_fund, new_campaign, start
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

AMOUNTS = (10_000, 5_000, 2_500)

index = st.integers(min_value=0, max_value=len(AMOUNTS) - 1)
step = st.one_of(
    st.tuples(st.just("submit"), index),
    st.tuples(st.just("approve"), index),
    st.tuples(st.just("request_changes"), index),
    st.tuples(st.just("cancel_deliverable"), index),
    st.tuples(st.just("cancel"), st.sampled_from([BRAND, CREATOR])),
    st.tuples(st.just("dispute"), index),
    st.tuples(st.just("withdraw"), st.none()),
    st.tuples(st.just("concede"), st.none()),
    st.tuples(st.just("freeze"), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([1, 2, 3, 6, 15])),  # days
)


async def _apply(env, campaign, action: str, arg) -> None:
    await (await prepare(env, campaign, action, arg))


async def prepare(env, campaign, action: str, arg) -> Awaitable[None]:
    """The action, ready to go: what it needs from the workflow (the dispute) asked first."""
    view = await campaign.query(CampaignWorkflow.state)
    dispute = (
        env.client.get_workflow_handle(f"dispute-{view['dispute_id']}")
        if view["dispute_id"]
        else None
    )
    updates = {
        "submit": lambda: campaign.execute_update(
            CampaignWorkflow.submit,
            SubmitDeliverable(actor_id=CREATOR, index=arg, url="https://x.io/p"),
        ),
        "approve": lambda: campaign.execute_update(
            CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=arg)
        ),
        "request_changes": lambda: campaign.execute_update(
            CampaignWorkflow.request_changes,
            RequestChanges(actor_id=BRAND, index=arg, reason="again"),
        ),
        "cancel_deliverable": lambda: campaign.execute_update(
            CampaignWorkflow.cancel_deliverable, DeliverableAction(actor_id=BRAND, index=arg)
        ),
        "cancel": lambda: campaign.execute_update(CampaignWorkflow.cancel, Action(actor_id=arg)),
        "dispute": lambda: campaign.execute_update(
            CampaignWorkflow.file_dispute,
            FileDispute(
                actor_id=BRAND,
                reason="late",
                deliverables=[arg],
                claim=Split(release_to_creator=0, refund_to_brand=AMOUNTS[arg]),
                statement="late",
            ),
        ),
        "withdraw": lambda: dispute.execute_update(
            DisputeWorkflow.withdraw, PartyAction(actor_id=BRAND)
        ),
        "concede": lambda: dispute.execute_update(
            DisputeWorkflow.respond,
            Respond(actor_id=CREATOR, statement="fair", accept_claim=True),
        ),
        "freeze": lambda: campaign.execute_update(
            CampaignWorkflow.set_frozen, SetFrozen(frozen=arg, reason="chargeback")
        ),
    }
    if action == "wait":
        return env.sleep(timedelta(days=arg))
    if action in ("withdraw", "concede") and dispute is None:
        return asyncio.sleep(0)
    return refusals_change_nothing(updates[action]())


async def refusals_change_nothing(update: Awaitable[Any]) -> None:
    try:
        await update
    except WorkflowUpdateFailedError:
        pass  # refused: wrong state, wrong side — refusals change nothing
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise  # NOT_FOUND: the workflow has ended; nothing more to do to it


def _check(view: dict) -> None:
    escrow = Escrow(**view["escrow"])
    assert escrow.is_exact, escrow
    statuses = [DeliverableStatus(d["status"]) for d in view["deliverables"]]
    owed = sum(a for a, s in zip(AMOUNTS, statuses, strict=True) if s not in FINAL)
    owed += sum(leg["amount"] for leg in view.get("owed_payouts", []))  # refused, still held
    assert escrow.held == (owed if escrow.funded else 0), view
    if view["status"] in (CampaignStatus.COMPLETED, CampaignStatus.EXPIRED):
        assert all(s in FINAL for s in statuses), view
    if view["status"] == CampaignStatus.CANCELLED:
        assert not any(s in UNAPPROVED for s in statuses), view


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=8))
async def test_random_sequences_keep_the_escrow_whole(env, task_queue, steps):
    campaign = await start(env, task_queue, new_campaign(amounts=AMOUNTS))
    await accept_and_fund(campaign)
    for action, arg in steps:
        await _apply(env, campaign, action, arg)
        _check(await campaign.query(CampaignWorkflow.state))
    # Left alone long enough, every deadline fires: the workflow is never wedged.
    view = await campaign.query(CampaignWorkflow.state)
    if view["status"] == CampaignStatus.FROZEN:
        await _apply(env, campaign, "freeze", False)
    await env.sleep(timedelta(days=60))
    _check(await campaign.query(CampaignWorkflow.state))
