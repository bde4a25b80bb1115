"""Issue #10's stateful property test (hypothesis `RuleBasedStateMachine`, time-skipping):
random party actions, rail faults (a rail that drops every third call, payouts blocked,
refunds refused), Stripe webhook events through the real endpoint (card disputes in any
order, repeated, redelivered after a failed delivery) and worker restarts — between steps
and in the middle of one. After every step the escrow adds up, the ledger matches the rail's
book leg by leg, and no more money left the rail than came in; at the end, with everything
lifted and time passed, the ledger matches the escrow term by term and nothing is owed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Coroutine
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import col, or_, select

from activities.rails import SANDBOX_BLOCKED_ACCOUNT_PREFIX, RailRefused, SandboxRail
from api.main import create_app
from db.models import LedgerEntry, SandboxMovement
from domain.campaign import CampaignStatus, RetryPayouts
from domain.reconciliation import Booked, Leg, book_findings, campaign_findings
from tests.api.test_stripe_webhooks import dispute_event, signed
from tests.conftest import serve
from tests.workflows.test_campaign import accept_and_fund, new_campaign, start
from tests.workflows.test_campaign_properties import (
    AMOUNTS,
    _check,
    prepare,
    refusals_change_nothing,
    step,
)
from worker import build_worker
from workflows.campaign import CampaignWorkflow

STEP_TIMEOUT = 300  # seconds for one step's coroutine: a hang fails the test, never blocks it


class DroppingRail(SandboxRail):
    """Every third call fails after the rail acted or before it (alternately): the answer,
    or the request, is lost. Transfers to the creator are refused while `blocked`, refunds
    while `refunds_refused` (Stripe refuses refunds on a disputed charge). While
    `forgets_keys`, the rail behaves as Stripe a day later: the first answer for each key is
    lost after acting, and a repeated key makes a second object carrying the same business
    key — only looking the first one up before retrying keeps money from moving twice."""

    def __init__(self, sessionmaker) -> None:
        super().__init__(sessionmaker)
        self.calls = 0
        self.blocked = self.refunds_refused = self.forgets_keys = False
        self.answered: set[str] = set()  # keys whose call was answered once

    async def _book(self, key, kind, prefix, amount, currency, counterparty):
        if self.forgets_keys and await self._booked(key, kind):
            key = f"{key}#again"
        return await super()._book(key, kind, prefix, amount, currency, counterparty)

    async def _maybe_drop(self, key: str, call):
        self.calls += 1
        if self.forgets_keys and key not in self.answered:
            self.answered.add(key)
            await call  # acted, answer lost
            raise ConnectionError("connection reset")
        if self.calls % 3:
            return await call
        if self.calls % 2:
            await call  # acted, answer lost
        else:
            call.close()  # never reached
        raise ConnectionError("connection reset")

    async def charge(self, key, *args):
        return await self._maybe_drop(key, super().charge(key, *args))

    async def transfer(self, key, amount, currency, party_id, account, group):
        if self.blocked and party_id.endswith("creator"):
            account = SANDBOX_BLOCKED_ACCOUNT_PREFIX + "Kyc"
        return await self._maybe_drop(
            key, super().transfer(key, amount, currency, party_id, account, group)
        )

    async def refund(self, key, *args):
        if self.refunds_refused:
            raise RailRefused("charge_disputed")
        return await self._maybe_drop(key, super().refund(key, *args))


async def _ledger_and_book(sessionmaker, campaign_id: str) -> tuple[list[Leg], list[Booked]]:
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
        Leg(e.idempotency_key, e.campaign_id, e.kind, e.amount, e.state, e.rail_reference, None)
        for e in entries
    ]
    return legs, [Booked(m.idempotency_key, m.kind, m.amount) for m in book]


class World:
    """What the machine drives, all on the test's event loop (the machine runs in a thread)."""

    def __init__(self, loop, env, settings, sessionmaker, task_queue, api_url: str) -> None:
        self.loop, self.env, self.settings = loop, env, settings
        self.sessionmaker, self.task_queue, self.api_url = sessionmaker, task_queue, api_url
        self.rail = DroppingRail(sessionmaker)
        self.workers = AsyncExitStack()
        self.restarts = 0

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STEP_TIMEOUT)

    async def start_worker(self) -> None:
        # No workflow cache, so no sticky queue: the time-skipping server never hands a
        # stopped worker's sticky tasks to the next worker (a query would wait forever).
        # Every workflow task is then a replay from history — what a restart tests.
        settings = self.settings.model_copy(update={"worker_max_cached_workflows": 0})
        worker = build_worker(
            self.env.client, settings, self.sessionmaker, self.task_queue, rail=self.rail
        )
        await self.workers.enter_async_context(worker)

    async def restart_worker(self) -> None:
        """A deploy: the running worker stops, then a new one starts; the workflows go on,
        replaying their histories on the new one."""
        await self.workers.aclose()
        self.workers = AsyncExitStack()
        await self.start_worker()
        self.restarts += 1

    async def post_event(self, event: dict) -> int:
        payload, headers = signed(event)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=60) as http:
            response = await http.post("/v1/webhooks/stripe", content=payload, headers=headers)
        assert response.status_code in (200, 503), response.text  # 503: Stripe retries
        return response.status_code


async def _apply_money(world: World, campaign, action: str, arg) -> None:
    await (await _prepare_money(world, campaign, action, arg))


async def _prepare_money(world: World, campaign, action: str, arg) -> Awaitable[None]:
    if action == "retry_payouts":
        return refusals_change_nothing(
            campaign.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts())
        )
    return await prepare(world.env, campaign, action, arg)


class MoneyMachine(RuleBasedStateMachine):
    world: World  # set by the test before the machine runs

    @initialize()
    def open_campaign(self) -> None:
        world = self.world
        world.rail.blocked = world.rail.refunds_refused = world.rail.forgets_keys = False
        self.new = new_campaign(amounts=AMOUNTS)
        self.campaign = world.run(start(world.env, world.task_queue, self.new))
        world.run(accept_and_fund(self.campaign))
        legs, _ = world.run(_ledger_and_book(world.sessionmaker, self.new.id))
        self.charge = next(leg.rail_reference for leg in legs if leg.kind == "fund")
        self.events: list[dict] = []  # every event sent, for repeats
        self.undelivered: list[dict] = []  # answered 503: Stripe sends them again

    # --- parties, time ---------------------------------------------------------------------

    @rule(action=step)
    def party_acts(self, action) -> None:
        self.world.run(_apply_money(self.world, self.campaign, *action))

    @rule()
    def retry_payouts(self) -> None:
        self.world.run(_apply_money(self.world, self.campaign, "retry_payouts", None))

    # --- the rail ----------------------------------------------------------------------------

    @rule(blocked=st.booleans())
    def creator_payouts(self, blocked: bool) -> None:
        self.world.rail.blocked = blocked

    @rule(refused=st.booleans())
    def refunds(self, refused: bool) -> None:
        self.world.rail.refunds_refused = refused

    @rule(forgets=st.booleans())
    def rail_forgets_keys(self, forgets: bool) -> None:
        self.world.rail.forgets_keys = forgets

    # --- Stripe's events, through the webhook endpoint ----------------------------------------

    @rule(
        dispute=st.sampled_from(["dp_1", "dp_2"]),
        outcome=st.sampled_from(["created", "won", "lost"]),
    )
    def card_dispute_event(self, dispute: str, outcome: str) -> None:
        kind = "charge.dispute.created" if outcome == "created" else "charge.dispute.closed"
        fields = {"amount": 6_000} | ({} if outcome == "created" else {"status": outcome})
        dispute_id = f"{dispute}_{self.new.id}"
        self._send(dispute_event(kind, self.charge, dispute_id, **fields))

    @rule()
    def funding_succeeded_event(self) -> None:
        """Stripe confirms a charge the fund action already saw: changes nothing."""
        self._send(
            {
                "id": "evt_" + uuid.uuid4().hex,
                "type": "payment_intent.succeeded",
                "data": {"object": {"id": self.charge, "status": "succeeded"}},
            }
        )

    @rule(which=st.integers(min_value=0, max_value=50))
    def event_delivered_again(self, which: int) -> None:
        """Stripe sends an event again: after a failed delivery, or just twice."""
        pending = self.undelivered or self.events
        if pending:
            self._send(pending[which % len(pending)], again=True)

    def _send(self, event: dict, again: bool = False) -> None:
        if not again:
            self.events.append(event)
        status = self.world.run(self.world.post_event(event))
        if status == 200 and event in self.undelivered:
            self.undelivered.remove(event)
        elif status != 200 and event not in self.undelivered:
            self.undelivered.append(event)

    # --- deploys -------------------------------------------------------------------------------

    @rule()
    def worker_restarts(self) -> None:
        self.world.run(self.world.restart_worker())

    @rule(action=step)
    def worker_restarts_during_an_action(self, action) -> None:
        async def both() -> None:
            # Asked before the restart: a query caught by a stopping worker is lost (the
            # server answers it only at its deadline); an Update is redelivered.
            update = await _prepare_money(self.world, self.campaign, *action)
            acting = asyncio.ensure_future(update)
            await asyncio.sleep(0)  # the Update is on its way
            await self.world.restart_worker()
            await acting

        self.world.run(both())

    # --- after every step ------------------------------------------------------------------------

    @invariant()
    def money_adds_up(self) -> None:
        world = self.world
        view = world.run(self.campaign.query(CampaignWorkflow.state))
        _check(view)
        legs, book = world.run(_ledger_and_book(world.sessionmaker, self.new.id))
        assert book_findings(legs, book) == [], (legs, book)
        paid_in = sum(b.amount for b in book if b.kind == "charge")
        paid_out = sum(b.amount for b in book if b.kind in ("transfer", "refund"))
        assert paid_out <= paid_in, book

    def teardown(self) -> None:
        """Let everything that can move, move: events delivered, holds lifted, payouts
        unblocked, time passed; then the ledger is the escrow and the book, term by term."""
        if not hasattr(self, "campaign"):
            return
        world = self.world
        world.rail.blocked = world.rail.refunds_refused = world.rail.forgets_keys = False
        for event in list(self.undelivered):
            while world.run(world.post_event(event)) != 200:
                pass  # Stripe retries until answered
        view = world.run(self.campaign.query(CampaignWorkflow.state))
        for source in view["holds"]:
            if source.startswith("card:"):
                self._send(
                    dispute_event(
                        "charge.dispute.closed", self.charge, source[5:], status="won", amount=0
                    )
                )
        if view["holds"].get("admin"):
            world.run(_apply_money(world, self.campaign, "freeze", False))
        world.run(_apply_money(world, self.campaign, "retry_payouts", None))
        world.run(world.env.sleep(timedelta(days=60)))
        view = world.run(self.campaign.query(CampaignWorkflow.state))
        _check(view)
        assert view["status"] != CampaignStatus.FROZEN, view
        assert view["owed_payouts"] == [], view
        legs, book = world.run(_ledger_and_book(world.sessionmaker, self.new.id))
        assert not [leg for leg in legs if leg.state == "pending"], legs
        assert campaign_findings(self.new.id, view["escrow"], legs) == []
        assert book_findings(legs, book) == []


async def test_money_moves_once_whatever_the_rail_the_events_and_deploys_do(
    time_env, settings, sessionmaker, task_queue
):
    async for api_url in serve(create_app(settings, temporal=time_env.client)):
        world = World(
            asyncio.get_running_loop(), time_env, settings, sessionmaker, task_queue, api_url
        )
        await world.start_worker()
        MoneyMachine.world = world
        try:
            await asyncio.to_thread(
                run_state_machine_as_test, MoneyMachine, settings=settings_for_machine
            )
        finally:
            await world.workers.aclose()
        assert world.restarts > 0  # the examples did restart workers


settings_for_machine = settings(
    max_examples=15,
    stateful_step_count=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
