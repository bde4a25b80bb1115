"""Issue #10's property test: random party actions with card disputes (any order, twice),
blocked payouts and their retries, on a rail that drops every third call (time-skipping).
After every step the escrow adds up; at the end the ledger matches the escrow term by term
and the rail's book leg by leg — no leg moved twice, none moved outside the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, or_, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.rails import SANDBOX_BLOCKED_ACCOUNT_PREFIX, RailRefused, SandboxRail
from db.models import LedgerEntry, SandboxMovement
from domain.campaign import CampaignStatus, CardDispute, RetryPayouts
from domain.reconciliation import Booked, Leg, book_findings, campaign_findings
from tests.workflows.test_campaign import accept_and_fund, new_campaign, start
from tests.workflows.test_campaign_properties import AMOUNTS, _apply, _check, step
from worker import build_worker
from workflows.campaign import CampaignWorkflow


class DroppingRail(SandboxRail):
    """Every third call fails after the rail acted or before it (alternately): the answer,
    or the request, is lost. Transfers to the creator are refused while `blocked`, refunds
    while `refunds_refused` (Stripe refuses refunds on a disputed charge)."""

    def __init__(self, sessionmaker) -> None:
        super().__init__(sessionmaker)
        self.calls = 0
        self.blocked = self.refunds_refused = False

    async def _maybe_drop(self, call):
        self.calls += 1
        if self.calls % 3:
            return await call
        if self.calls % 2:
            await call  # acted, answer lost
        else:
            call.close()  # never reached
        raise ConnectionError("connection reset")

    async def charge(self, *args):
        return await self._maybe_drop(super().charge(*args))

    async def transfer(self, key, amount, currency, party_id, account, group):
        if self.blocked and party_id.endswith("creator"):
            account = SANDBOX_BLOCKED_ACCOUNT_PREFIX + "Kyc"
        return await self._maybe_drop(
            super().transfer(key, amount, currency, party_id, account, group)
        )

    async def refund(self, *args):
        if self.refunds_refused:
            raise RailRefused("charge_disputed")
        return await self._maybe_drop(super().refund(*args))


money_step = st.one_of(
    step,
    st.tuples(
        st.just("card"),
        st.tuples(st.sampled_from(["dp_1", "dp_2"]), st.sampled_from(["open", "won", "lost"])),
    ),
    st.tuples(st.just("kyc"), st.booleans()),  # the creator's payouts blocked / unblocked
    st.tuples(st.just("refunds"), st.booleans()),  # refunds refused / accepted
    st.tuples(st.just("retry_payouts"), st.none()),
)


async def _apply_money(env, campaign, rail, action: str, arg) -> None:
    try:
        if action == "card":
            dispute_id, status = arg
            await campaign.execute_update(
                CampaignWorkflow.card_dispute,
                CardDispute(dispute_id=dispute_id, status=status, amount=6_000),
            )
        elif action == "kyc":
            rail.blocked = arg
        elif action == "refunds":
            rail.refunds_refused = arg
        elif action == "retry_payouts":
            await campaign.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts())
        else:
            await _apply(env, campaign, action, arg)
    except WorkflowUpdateFailedError:
        pass  # refused: changes nothing
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def _ledger_and_book(sessionmaker, campaign_id: str):
    ours = or_(
        col(SandboxMovement.idempotency_key).startswith(f"{campaign_id}:"),
        col(SandboxMovement.idempotency_key).startswith(f"dsp_{campaign_id.removeprefix('cmp_')}_"),
    )
    async with sessionmaker() as session:
        entries = (
            await session.exec(select(LedgerEntry).where(LedgerEntry.campaign_id == campaign_id))
        ).all()
        book = (await session.exec(select(SandboxMovement).where(ours))).all()
    legs = [
        Leg(
            e.idempotency_key,
            e.campaign_id,
            e.kind,
            e.amount,
            e.state,
            e.rail_reference,
            e.updated_at,
        )
        for e in entries
    ]
    return legs, [Booked(m.idempotency_key, m.kind, m.amount) for m in book]


@pytest.fixture
async def dropping(time_env, settings, sessionmaker, task_queue):
    rail = DroppingRail(sessionmaker)
    async with build_worker(time_env.client, settings, sessionmaker, task_queue, rail=rail):
        yield time_env, rail


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(money_step, min_size=1, max_size=8))
async def test_money_moves_once_whatever_the_rail_and_the_events_do(
    dropping, task_queue, sessionmaker, steps
):
    env, rail = dropping
    rail.blocked = rail.refunds_refused = False
    new = new_campaign(amounts=AMOUNTS)
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    for action, arg in steps:
        await _apply_money(env, campaign, rail, action, arg)
        _check(await campaign.query(CampaignWorkflow.state))
    # Let everything that can move, move: holds lifted, payouts unblocked, time passed.
    rail.blocked = rail.refunds_refused = False
    view = await campaign.query(CampaignWorkflow.state)
    for source in view["holds"]:
        if source.startswith("card:"):
            await _apply_money(env, campaign, rail, "card", (source[5:], "won"))
    if view["holds"].get("admin"):
        await _apply(env, campaign, "freeze", False)
    await _apply_money(env, campaign, rail, "retry_payouts", None)  # once nothing holds
    await env.sleep(timedelta(days=60))
    view = await campaign.query(CampaignWorkflow.state)
    _check(view)
    assert view["status"] != CampaignStatus.FROZEN, view
    assert view["owed_payouts"] == [], view

    legs, book = await _ledger_and_book(sessionmaker, new.id)
    assert not [leg for leg in legs if leg.state == "pending"], legs
    assert campaign_findings(new.id, view["escrow"], legs) == []
    assert book_findings(legs, book) == []
