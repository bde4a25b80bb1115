"""CampaignWorkflow (`campaign-{id}`): owns a campaign's escrow, deadlines and status (SPEC §3).

One loop sleeps until the campaign's next deadline or until an Update changes the state,
then fires whatever is due. Party actions are Updates whose validators refuse wrong actors,
states and amounts before anything reaches history; handlers re-check under the lock because
a timer may have moved the campaign on while they waited. Money moves only in activities,
keyed by business ids, so a replay or retry never moves it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
)
from temporalio.exceptions import TimeoutError as ChildTimeoutError
from temporalio.workflow import ParentClosePolicy

from workflows.dispute import DisputeWorkflow
from workflows.records import record
from workflows.timers import history_is_long, next_version, sleep_until_due

with workflow.unsafe.imports_passed_through():
    from activities.metrics import MetricsActivities
    from activities.payments import PaymentActivities
    from activities.records import RecordActivities
    from domain import search_attributes as sa
    from domain.campaign import (
        DISPUTABLE,
        FINAL,
        MAX_CARD_DISPUTES,
        UNAPPROVED,
        AcceptCampaign,
        Action,
        CampaignState,
        CampaignStatus,
        Cancellation,
        CardDispute,
        Deliverable,
        DeliverableAction,
        DeliverableStatus,
        FundingSettled,
        FundRequest,
        NewCampaign,
        PayoutLeg,
        RequestChanges,
        RetryPayouts,
        Review,
        SetFrozen,
        Submission,
        SubmitDeliverable,
        SubmitReview,
        open_campaign,
        timer_field,
    )
    from domain.contract import canonical_json, rfc3339, sha256_hex
    from domain.deadlines import next_wake, reminder_data, take_due_reminders
    from domain.display import format_money, one_line, party, relative
    from domain.dispute import (
        DISPUTE_DECIDED,
        DisputeResult,
        EvidenceItem,
        FileDispute,
        NewDispute,
        Split,
    )
    from domain.errors import Refusal, refuse
    from domain.money import MoneyError, ReleaseSplit, check_split, split_release
    from domain.payments import (
        DEFAULT_PAYMENT_METHOD,
        PAYMENT_DECLINED,
        RAIL_REFUSED,
        FundCampaign,
        RecordChargeback,
        RefundFunds,
        ReleaseFunds,
        SettleFunding,
    )
    from domain.proof import Observation, ObservePost, earned, start_tracking
    from domain.records import CampaignChange, TimelineEntry

# Money must eventually move: retry rail outages for as long as it takes, but back off.
MONEY_RETRY = RetryPolicy(
    maximum_interval=timedelta(minutes=1), non_retryable_error_types=[PAYMENT_DECLINED]
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A party waiting on "fund" gets an answer within this; the same key is reused next time.
FUNDING_DEADLINE = timedelta(minutes=1)
# workflow.patched ids: behaviour that differs from what histories recorded before it.
DISPUTE_ABANDONED_ON_CLOSE = "dispute-abandoned-on-close"
FREEZE_PAUSES_TIMERS = "freeze-pauses-timers"
REFUND_RESUMED_AFTER_CANCELLATION = "refund-resumed-after-cancellation"
DISPUTE_ID_FROM_CAMPAIGN = "dispute-id-from-campaign"
FIND_UNANSWERED_FUNDING = "find-unanswered-funding"
OWED_PAYOUTS = "owed-payouts"
PROOF_OF_PERFORMANCE = "proof-of-performance"
# A provider that does not answer costs one poll, never the campaign: the next poll tries again.
METRICS_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=30))
# A hold set before holds had sources: either kind of lifting lifts it.
LEGACY_HOLD = "legacy"


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, new: NewCampaign) -> None:
        self.campaign: CampaignState = new.carried or open_campaign(new, workflow.now())
        self._history_limit = new.history_limit
        self._names = new.names  # display only (`_details`)
        self._poll_every = new.proof_poll_every  # how often a tracked post is looked at
        self.answered = dict(new.answered)  # see workflows/repeats.py
        self._lock = asyncio.Lock()
        self._ready = False
        self._published: dict[str, Any] = {}
        self._disputes: list[asyncio.Task] = []
        self._owing: list[PayoutLeg] = []  # refused legs of the step in progress (`_changed`)

    @workflow.run
    async def run(self, new: NewCampaign) -> dict[str, Any]:
        if new.carried is None:
            async with self._lock:
                await self._changed(
                    "campaign.created", new.created_by, notify=[self.campaign.creator_id]
                )
        else:
            self._publish()  # a continued run: the UI's view as the last run left it
        self._ready = True
        while not self._finished():
            if self._time_to_continue_as_new(new.history_limit):
                workflow.continue_as_new(
                    new.model_copy(update={"carried": self.campaign, "answered": self.answered})
                )
            try:
                await sleep_until_due(
                    self._next_wake,
                    lambda: (
                        self._all_final()
                        or self._finished()
                        or self._time_to_continue_as_new(new.history_limit)
                    ),
                )
                async with self._lock:
                    await self._fire_due()
                    self._check_not_stranded()
            except asyncio.CancelledError:
                # The Temporal UI's "Request Cancellation" must not end a workflow that holds
                # escrow: the request is refused and recorded; the money paths are idempotent,
                # so a fire pass it interrupted simply runs again.
                async with self._lock:
                    await self._changed("campaign.cancellation_request_refused", None, notify=[])
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.campaign.public()

    # --- reads ---------------------------------------------------------------------------

    @workflow.query
    def state(self) -> dict[str, Any]:
        return self.state_view()

    def state_view(self) -> dict[str, Any]:
        return self.campaign.public()

    def acknowledged(self) -> dict[str, Any]:
        """What every Update answers: small and fixed-size, because each answer is stored in
        the history; the caller reads the campaign through the `state` query."""
        return {"campaign_id": self.campaign.id, "version": self.campaign.version}

    @workflow.update
    async def created(self) -> dict[str, Any]:
        """Sent with the start (update-with-start): answers once the campaign is recorded."""
        await workflow.wait_condition(lambda: self._ready)
        return self.acknowledged()

    # --- acceptance and funding -------------------------------------------------------------

    @workflow.update
    async def accept(self, req: AcceptCampaign) -> dict[str, Any]:
        async with self._lock:
            self._check_accept(req)
            now = workflow.now()
            self.campaign.phase = CampaignStatus.AWAITING_FUNDING
            self.campaign.fund_by = now + self.campaign.terms.funding_window
            await self._changed("campaign.accepted", req.actor_id)
        return self.acknowledged()

    @accept.validator
    def _check_accept(self, req: AcceptCampaign) -> None:
        self.campaign.require_side(req.actor_id, "creator")
        self.campaign.require_phase(CampaignStatus.AWAITING_ACCEPTANCE)
        if req.contract_hash != self.campaign.contract_hash:
            raise refuse(Refusal.CONTRACT_CHANGED, "the contract changed since you read it")

    @workflow.update
    async def decline(self, req: Action) -> dict[str, Any]:
        async with self._lock:
            self._check_decline(req)
            self._end(CampaignStatus.DECLINED)
            await self._changed("campaign.declined", req.actor_id)
        return self.acknowledged()

    @decline.validator
    def _check_decline(self, req: Action) -> None:
        self.campaign.require_side(req.actor_id, "creator")
        self.campaign.require_phase(CampaignStatus.AWAITING_ACCEPTANCE)

    @workflow.update
    async def fund(self, req: FundRequest) -> dict[str, Any]:
        async with self._lock:
            self._check_fund(req)
            state = self.campaign
            # A new key only after a definite decline; after an outage the same key is
            # reused so a charge that did go through is found, never made twice.
            key = f"{state.id}:fund" + (
                f":{state.fund_attempts + 1}" if state.fund_attempts else ""
            )
            try:
                movement = await _move_money(
                    PaymentActivities.fund_campaign,
                    self._funding(key, req.payment_method),
                    schedule_to_close_timeout=FUNDING_DEADLINE,
                )
            except ActivityError as err:
                if _error_type(err) == PAYMENT_DECLINED:
                    state.fund_attempts += 1
                    state.funding_key = None  # this key's charge failed: nothing to find
                    await self._changed(
                        "campaign.funding_failed", req.actor_id, notify=[state.brand_id]
                    )
                    raise refuse(
                        Refusal.PAYMENT_FAILED, "the payment method was declined"
                    ) from None
                # The charge may yet go through: its key is kept, so the rail's word on it
                # (a webhook, or a lookup before the campaign expires) is applied (SPEC §9).
                state.funding_key = key
                raise refuse(
                    Refusal.PAYMENT_UNAVAILABLE, "the payment rail did not answer; retry later"
                ) from None
            if movement.settling:
                state.phase = CampaignStatus.FUNDING_PENDING
                state.funding_key, state.funding_reference = key, movement.reference
                await self._changed(
                    "campaign.funding_pending",
                    req.actor_id,
                    {"reference": movement.reference},
                    notify=[state.brand_id],
                )
                return self.acknowledged()
            self._funded()
            await self._changed("campaign.funded", req.actor_id, {"amount": state.budget})
        return self.acknowledged()

    def _funding(self, key: str, payment_method: str) -> FundCampaign:
        state = self.campaign
        return FundCampaign(
            idempotency_key=key,
            campaign_id=state.id,
            brand_id=state.brand_id,
            amount=state.budget,
            currency=state.currency,
            payment_method=payment_method,
        )

    def _funded(self) -> None:
        state = self.campaign
        state.escrow = state.escrow.fund(state.budget)
        state.phase = CampaignStatus.ACTIVE
        state.funded_at = workflow.now()
        state.funding_key = state.funding_reference = None

    @workflow.update
    async def funding_settled(self, req: FundingSettled) -> dict[str, Any]:
        """The rail's word on a charge that was settling or went unanswered (Stripe's
        `payment_intent.succeeded` / `payment_failed`): funded, or back to awaiting funding."""
        async with self._lock:
            self._check_funding_settled(req)
            state = self.campaign
            await _move_money(
                PaymentActivities.settle_funding,
                SettleFunding(
                    idempotency_key=state.funding_key or "",
                    campaign_id=state.id,
                    reference=req.reference,
                    succeeded=req.succeeded,
                    reason=req.reason,
                ),
            )
            if req.succeeded:
                self._funded()
                await self._changed("campaign.funded", None, {"amount": state.budget})
            else:
                # A failed charge: the brand may fund again, under a new key, with a full
                # funding window from now.
                state.phase = CampaignStatus.AWAITING_FUNDING
                state.fund_attempts += 1
                state.funding_key = state.funding_reference = None
                now = workflow.now()
                state.fund_by = max(state.fund_by or now, now + state.terms.funding_window)
                await self._changed(
                    "campaign.funding_failed",
                    None,
                    {"reason": req.reason},
                    notify=[state.brand_id],
                )
        return self.acknowledged()

    @funding_settled.validator
    def _check_funding_settled(self, req: FundingSettled) -> None:
        state = self.campaign
        if state.phase == CampaignStatus.FUNDING_PENDING:
            if req.reference != state.funding_reference:
                raise refuse(
                    Refusal.INVALID_STATE, f"{req.reference} is not this campaign's charge"
                )
            return
        if state.phase == CampaignStatus.AWAITING_FUNDING and state.funding_key:
            return  # a charge whose answer was lost: the rail's word settles it
        raise refuse(Refusal.INVALID_STATE, f"no charge is settling ({state.phase.value})")

    @fund.validator
    def _check_fund(self, req: FundRequest) -> None:
        self.campaign.require_side(req.actor_id, "brand")
        self.campaign.require_phase(CampaignStatus.AWAITING_FUNDING)

    # --- deliverables ------------------------------------------------------------------------

    @workflow.update
    async def submit(self, req: SubmitDeliverable) -> dict[str, Any]:
        async with self._lock:
            item = self._check_submit(req)
            now = workflow.now()
            content = {"url": req.url, "notes": req.notes, "metrics": req.metrics}
            latest = Submission(
                url=req.url,
                submitted_at=now,
                sha256=sha256_hex(canonical_json(content)),
                number=(_count(item) if item.submissions else 0) + 1,
            )
            # Only the latest stays in state (bounded whatever the revisions); the content
            # goes to the timeline, where the API reads every submission back.
            item.submissions = [*_kept(item.submissions), latest]
            item.status = DeliverableStatus.SUBMITTED
            item.review_due_at = now + self.campaign.terms.review_window
            await self._changed(
                "deliverable.submitted",
                req.actor_id,
                {
                    "index": item.index,
                    "submission": {
                        **content,
                        "sha256": latest.sha256,
                        "number": latest.number,
                        "submitted_at": rfc3339(now),
                    },
                },
            )
        return self.acknowledged()

    @submit.validator
    def _check_submit(self, req: SubmitDeliverable) -> Deliverable:
        self._check_active_action(req, "creator")
        return self.campaign.deliverable(
            req.index,
            DeliverableStatus.PENDING,
            DeliverableStatus.CHANGES_REQUESTED,
            DeliverableStatus.OVERDUE,
        )

    @workflow.update
    async def approve(self, req: DeliverableAction) -> dict[str, Any]:
        async with self._lock:
            item = self._check_review(req)
            self._approve(item, "brand")
            await self._changed("deliverable.approved", req.actor_id, {"index": item.index})
        return self.acknowledged()

    @approve.validator
    def _check_review(self, req: DeliverableAction) -> Deliverable:
        self._check_active_action(req, "brand")
        return self.campaign.deliverable(req.index, DeliverableStatus.SUBMITTED)

    @workflow.update
    async def request_changes(self, req: RequestChanges) -> dict[str, Any]:
        async with self._lock:
            item = self._check_request_changes(req)
            item.revisions += 1
            item.submissions[-1].change_request = req.reason
            item.status = DeliverableStatus.CHANGES_REQUESTED
            item.review_due_at = None
            await self._changed(
                "deliverable.changes_requested",
                req.actor_id,
                {"index": item.index, "reason": req.reason},
            )
        return self.acknowledged()

    @request_changes.validator
    def _check_request_changes(self, req: RequestChanges) -> Deliverable:
        item = self._check_review(req)
        if item.revisions >= self.campaign.terms.max_revisions:
            raise refuse(
                Refusal.REVISION_LIMIT_REACHED,
                f"deliverable {item.index} already had {item.revisions} revision(s); "
                "approve it or file a dispute",
            )
        return item

    @workflow.update
    async def cancel_deliverable(self, req: DeliverableAction) -> dict[str, Any]:
        async with self._lock:
            item = self._check_cancel_deliverable(req)
            await self._refund(item, req.actor_id)
        return self.acknowledged()

    @cancel_deliverable.validator
    def _check_cancel_deliverable(self, req: DeliverableAction) -> Deliverable:
        self._check_active_action(req, "brand")
        return self.campaign.deliverable(req.index, DeliverableStatus.OVERDUE)

    # --- cancellation ------------------------------------------------------------------------

    @workflow.update
    async def cancel(self, req: Action) -> dict[str, Any]:
        async with self._lock:
            side = self._check_cancel(req)
            state = self.campaign
            unanswered = state.phase == CampaignStatus.AWAITING_FUNDING and state.funding_key
            if unanswered and workflow.patched(FIND_UNANSWERED_FUNDING):
                if await self._found_unanswered_funding():
                    raise refuse(
                        Refusal.INVALID_STATE, "the charge is still settling; cancel once it has"
                    )
            if state.phase != CampaignStatus.ACTIVE:
                self._end(CampaignStatus.CANCELLED)
                await self._changed("campaign.cancelled", req.actor_id, {"by": side})
            elif state.cancellation is None:
                now = workflow.now()
                state.cancellation = Cancellation(
                    requested_by=side,
                    requested_at=now,
                    confirm_by=now + state.terms.cancellation_window,
                )
                await self._changed("campaign.cancellation_requested", req.actor_id, {"by": side})
            else:
                await self._cancel_after_funding(req.actor_id, confirmed_by=side)
        return self.acknowledged()

    @cancel.validator
    def _check_cancel(self, req: Action) -> str:
        state = self.campaign
        side = state.require_either_side(req.actor_id)
        state.require_phase(
            CampaignStatus.AWAITING_ACCEPTANCE,
            CampaignStatus.AWAITING_FUNDING,
            CampaignStatus.ACTIVE,
        )
        if state.phase == CampaignStatus.ACTIVE:
            state.require_not_frozen()
            if state.dispute_id:
                raise refuse(Refusal.DISPUTE_OPEN, "resolve or withdraw the open dispute first")
            if state.cancellation and state.cancellation.requested_by == side:
                raise refuse(
                    Refusal.INVALID_STATE, "cancellation already requested; the other side confirms"
                )
        return side

    # --- disputes (SPEC §4): the campaign freezes, the child decides, the campaign pays -----

    @workflow.update
    async def file_dispute(self, req: FileDispute) -> dict[str, Any]:
        async with self._lock:
            side, items = self._check_file_dispute(req)
            dispute_id = await self._open_dispute(req, side, items)
        return {**self.acknowledged(), "dispute_id": dispute_id}

    async def _open_dispute(
        self,
        req: FileDispute,
        side: str,
        items: list[Deliverable],
        evidence: list[EvidenceItem] | None = None,
    ) -> str:
        """Freezes the disputed deliverables and starts the dispute child (SPEC §4)."""
        state, now = self.campaign, workflow.now()
        if workflow.patched(DISPUTE_ID_FROM_CAMPAIGN):
            # From business data, so a reset or replay names the same dispute (and the
            # settlement keys derived from it) the same way.
            state.disputes_filed += 1
            dispute_id = f"dsp_{state.id.removeprefix('cmp_')}_{state.disputes_filed}"
        else:
            dispute_id = "dsp_" + workflow.uuid4().hex[:16]
        for item in items:
            _freeze(item, now)
        new = NewDispute(
            id=dispute_id,
            campaign_id=state.id,
            campaign_title=state.title,
            currency=state.currency,
            brand_id=state.brand_id,
            creator_id=state.creator_id,
            agency_id=state.agency_id,
            agency_represents=state.agency_represents,
            claimant_id=req.actor_id,
            claimant_side=side,
            reason=req.reason,
            statement=req.statement,
            deliverables=[item.index for item in items],
            disputed_amount=sum(item.amount for item in items),
            claim=req.claim,
            terms=state.terms,
            evidence=evidence or [],
            history_limit=self._history_limit,
        )
        handle = await workflow.start_child_workflow(
            DisputeWorkflow.run,
            new,
            id=f"dispute-{dispute_id}",
            # The dispute outlives its parent's run (a terminated or continued campaign
            # must not take the case with it); campaigns started before keep TERMINATE.
            parent_close_policy=ParentClosePolicy.ABANDON
            if workflow.patched(DISPUTE_ABANDONED_ON_CLOSE)
            else ParentClosePolicy.TERMINATE,
            static_summary=f"Dispute over “{state.title}”: {new.disputed_amount} "
            f"{state.currency}, filed by the {side} ({req.reason})",
        )
        state.dispute_id = dispute_id
        self._disputes.append(asyncio.create_task(self._settle_when_decided(handle)))
        await self._changed(
            "campaign.disputed",
            req.actor_id,
            {"dispute_id": dispute_id, "deliverables": new.deliverables},
            notify=[],  # the dispute itself tells everyone
        )
        return dispute_id

    @file_dispute.validator
    def _check_file_dispute(self, req: FileDispute) -> tuple[str, list[Deliverable]]:
        state = self.campaign
        side = state.require_either_side(req.actor_id)
        state.require_phase(CampaignStatus.ACTIVE, CampaignStatus.CANCELLED)
        state.require_not_frozen()
        if state.dispute_id:
            raise refuse(Refusal.DISPUTE_OPEN, f"dispute {state.dispute_id} is still open")
        if req.deliverables is None:
            items = [d for d in state.deliverables if d.status in DISPUTABLE]
        else:
            count = len(state.deliverables)
            if any(not 0 <= index < count for index in req.deliverables):
                raise refuse(
                    Refusal.VALIDATION_ERROR, f"deliverables: indexes run from 0 to {count - 1}"
                )
            if len(set(req.deliverables)) != len(req.deliverables):
                raise refuse(Refusal.VALIDATION_ERROR, "deliverables: each index once")
            items = [state.deliverable(i, *DISPUTABLE) for i in req.deliverables]
        if not items:
            raise refuse(Refusal.INVALID_STATE, "no deliverable still holds escrow")
        amount = sum(item.amount for item in items)
        try:
            check_split(req.claim.release_to_creator, req.claim.refund_to_brand, amount)
        except MoneyError as err:
            raise refuse(Refusal.VALIDATION_ERROR, f"claim: {err}") from None
        return side, items

    async def _settle_when_decided(self, handle) -> None:
        try:
            result: DisputeResult | None = await handle
            ended = None
        except ChildWorkflowError as err:
            # Terminated, timed out or failed at the engine level (a click in the Temporal
            # UI, an operator): no decision exists, so nothing is paid on its account. The
            # deliverables resume as on a withdrawal, and everyone — mediators included —
            # is told, so the claimant can file again.
            result, ended = None, _child_end(err)
        await self._settle(handle.id.removeprefix("dispute-"), result, ended)

    @workflow.signal(name=DISPUTE_DECIDED)
    def dispute_decided(self, result: DisputeResult) -> None:
        """The dispute's own word that it has ended. It reaches whichever run is current:
        after a reset (an admin's restore) the run that started the child, which would have
        received its result, is gone. Settling twice is impossible: `_settle` acts only
        while the dispute is still the open one."""
        if result.dispute_id == self.campaign.dispute_id:
            self._disputes.append(asyncio.create_task(self._settle(result.dispute_id, result)))

    async def _settle(
        self, dispute_id: str, result: DisputeResult | None, ended: str | None = None
    ) -> None:
        while True:
            # A disputed funding charge holds every movement until it closes (SPEC §7); a
            # freeze queued on the lock ahead of this step is seen once the lock is held.
            await workflow.wait_condition(lambda: not self.campaign.frozen)
            async with self._lock:
                if not self.campaign.frozen:
                    await self._settle_locked(dispute_id, result, ended)
                    return

    async def _settle_locked(
        self, dispute_id: str, result: DisputeResult | None, ended: str | None
    ) -> None:
        state = self.campaign
        if state.dispute_id != dispute_id:
            return  # already settled: the child's answer and its signal both arrive
        items = [d for d in state.deliverables if d.status == DeliverableStatus.DISPUTED]
        if result is None:
            now = workflow.now()
            for item in items:
                _resume(item, now)
            await self._refund_resumed_after_cancellation(items)
            dispute_id, state.dispute_id = state.dispute_id, None
            await self._changed(
                "campaign.dispute_ended",
                None,
                {"dispute_id": dispute_id, "ended": ended},
                notify=state.parties(),
                notify_roles=["mediator"],
            )
            self._check_not_stranded()
            return
        outcome = result.outcome
        if outcome is None:
            now = workflow.now()
            for item in items:
                _resume(item, now)
            await self._refund_resumed_after_cancellation(items)
            state.dispute_id = None
            await self._changed(
                "campaign.dispute_withdrawn", None, {"dispute_id": result.dispute_id}, notify=[]
            )
            self._check_not_stranded()
            return
        if not items:
            # A lost chargeback already took the disputed money back to the brand: the
            # decision has nothing left to move.
            state.dispute_id = None
            await self._changed(
                "campaign.dispute_ended",
                None,
                {"dispute_id": result.dispute_id, "ended": "charged_back"},
                notify=state.parties(),
            )
            return
        data: dict[str, Any] = {"dispute_id": result.dispute_id, "by": outcome.by}
        if outcome.release_to_creator:
            split = await self._pay_creator(
                f"{result.dispute_id}:settle:release", outcome.release_to_creator
            )
            data.update(asdict(split))
        if outcome.refund_to_brand:
            await self._refund_brand(f"{result.dispute_id}:settle:refund", outcome.refund_to_brand)
        data["refund_to_brand"] = outcome.refund_to_brand
        for item in items:
            item.status = DeliverableStatus.SETTLED
            item.frozen_from = item.paused_remaining = None
        state.dispute_id = None
        await self._changed(
            "deliverable.settled",
            None,
            {**data, "indexes": [item.index for item in items]},
            notify=state.parties(),
        )

    # --- proof of performance (issue #15): approval starts tracking, the proof releases -------

    @workflow.update
    async def report_metrics(self, req: Observation) -> dict[str, Any]:
        """An integration's snapshot, stored by the API (the figures of the contracted metrics,
        reachable, the snapshot's id and sha256): taken in as a provider's poll is."""
        async with self._lock:
            item = self._check_report_metrics(req)
            await self._observed(item, req)
        return self.acknowledged()

    @report_metrics.validator
    def _check_report_metrics(self, req: Observation) -> Deliverable:
        item = self.campaign.deliverable(req.index, DeliverableStatus.APPROVED)
        if item.tracking is None or item.tracking.release is not None:
            raise refuse(Refusal.INVALID_STATE, f"deliverable {req.index} is not being tracked")
        return item

    def _proof_wake(self) -> datetime | None:
        """The next poll, objective window, cure window or release of a tracked deliverable
        (none for campaigns without proof terms, so their timers are as they were)."""
        state = self.campaign
        if state.frozen:
            return None
        times = []
        for item in state.deliverables:
            tracking = item.tracking
            if (
                tracking is None
                or item.status != DeliverableStatus.APPROVED
                or item.paused_remaining is not None
                or item.payout_blocked
            ):
                continue
            # A cure window that ran out waits for the open dispute to end: not a wake-up.
            if tracking.cure_by and state.dispute_id and tracking.cure_by <= workflow.now():
                continue
            if (wake := tracking.next_wake(item.clears_at)) is not None:
                times.append(wake)
        return min(times, default=None)

    async def _track(self, item: Deliverable) -> None:
        """One step of a tracked deliverable: look at the post when a poll, a window or the
        release is due; close objective windows; then cure, dispute or release."""
        state, tracking, now = self.campaign, item.tracking, workflow.now()
        if tracking.release is None:
            decide_at = tracking.decide_at(item.clears_at)
            due = [p for p in tracking.progress if not p.evaluated and p.due_at <= now]
            cure_over = tracking.cure_by is not None and tracking.cure_by <= now
            if tracking.next_poll_at <= now or due or decide_at <= now or cure_over:
                await self._poll(item)
            for objective in tracking.evaluate_due(now):
                await self._changed(
                    "deliverable.objective_evaluated",
                    None,
                    {
                        "index": item.index,
                        "metric": objective.metric.value,
                        "achieved": objective.achieved,
                        "target": objective.target,
                        "met": objective.achieved >= objective.target,
                    },
                    notify=state.parties(),
                )
            if tracking.down_since is not None:
                if tracking.cure_by <= now and state.dispute_id is None:
                    await self._dispute_takedown(item)
                return  # paused: restored, the release waits for its time again
            if tracking.decide_at(item.clears_at) > now:
                return
            tracking.release, tracking.refund = earned(item.amount, item.proof, tracking.achieved())
        await self._release_on_proof(item)

    async def _poll(self, item: Deliverable) -> None:
        tracking, now = item.tracking, workflow.now()
        tracking.next_poll_at = now + tracking.poll_every
        tracking.polls += 1
        try:
            seen = await workflow.execute_activity_method(
                MetricsActivities.observe_post,
                ObservePost(
                    campaign_id=self.campaign.id,
                    index=item.index,
                    url=item.submissions[-1].url,
                    metrics=[o.metric for o in item.objectives or []],
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=METRICS_RETRY,
            )
        except ActivityError:
            return  # no look this time; the figures stay as last seen
        await self._observed(item, seen)

    async def _observed(self, item: Deliverable, seen: Observation) -> None:
        """Keeps the latest figures and digest; records only what matters (a takedown, a
        restore, a target met, a quarter of a target passed), so the timeline and the
        history stay bounded however long tracking runs."""
        tracking = item.tracking
        events = tracking.observe(seen, workflow.now(), item.proof.cure_window)
        base = {"index": item.index, "snapshot_id": seen.snapshot_id, "sha256": seen.sha256}
        if "taken_down" in events:
            await self._changed(
                "deliverable.taken_down",
                None,
                {**base, "cure_by": rfc3339(tracking.cure_by)},
                notify=self.campaign.parties(),
            )
        if "restored" in events:
            await self._changed("deliverable.restored", None, base, notify=self.campaign.parties())
        if any(e.startswith(("target_met", "progress")) for e in events):
            figures = {m.value: v for m, v in tracking.figures.items()}
            met = [e.split(":")[1] for e in events if e.startswith("target_met")]
            await self._changed(
                "deliverable.progress",
                None,
                {**base, "figures": figures, "targets_met": met},
                notify=self.campaign.parties() if met else [],
            )

    async def _release_on_proof(self, item: Deliverable) -> None:
        """What the payout rule earned goes to the creator side (fee and commission taken),
        the rest back to the brand: each its own leg, through the usual release and refund."""
        state, tracking = self.campaign, item.tracking
        data: dict[str, Any] = {"index": item.index, "refund_to_brand": tracking.refund}
        data["achieved"] = {m.value: v for m, v in tracking.achieved().items()}
        if tracking.release:
            split = await self._pay_release(item, tracking.release)
            if split is None:
                return  # payout blocked: the retry sends it, then the refund
            data.update(asdict(split))
        if tracking.refund:
            await self._refund_brand(f"{state.id}:refund:{item.index}", tracking.refund)
        if tracking.release:
            item.status = DeliverableStatus.RELEASED
            await self._changed("deliverable.released", None, data, notify=state.parties())
        else:
            item.status = DeliverableStatus.REFUNDED
            data["amount"] = tracking.refund
            await self._changed("deliverable.refunded", None, data, notify=state.parties())

    async def _dispute_takedown(self, item: Deliverable) -> None:
        """Not restored within the cure window: the platform files a dispute for the brand
        over this deliverable, with the post's snapshots (ids and digests) as evidence."""
        state, tracking = self.campaign, item.tracking
        found = await workflow.execute_activity_method(
            MetricsActivities.takedown_evidence,
            ObservePost(campaign_id=state.id, index=item.index, url=item.submissions[-1].url),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )
        tracking.takedown_disputed = True
        tracking.down_since = tracking.cure_by = None
        evidence = EvidenceItem(
            id=f"ev_takedown_{item.index}",
            kind="text",
            submitted_by="platform",
            at=workflow.now(),
            description=found.description,
            sha256=found.sha256,
        )
        latest = ", ".join(f"{ref.id}:{ref.sha256[:12]}" for ref in found.snapshots[-10:])
        filing = FileDispute(
            actor_id=state.brand_id,
            reason="post taken down",
            deliverables=[item.index],
            claim=Split(release_to_creator=0, refund_to_brand=item.amount),
            statement=f"Filed by Parley: the post of deliverable {item.index} stopped answering "
            f"during its live period and was not restored within the cure window. "
            f"Latest snapshots (id:sha256): {latest or 'none'}.",
        )
        await self._open_dispute(filing, "brand", [item], evidence=[evidence])

    # --- payment-rail and admin ----------------------------------------------------------------

    @workflow.update
    async def retry_payouts(self, req: RetryPayouts) -> dict[str, Any]:
        self._check_retry_payouts(req)
        # Counted before the lock: a refused leg parked under it wakes on this.
        self.campaign.payout_retries += 1
        async with self._lock:
            retried = []
            for item in self.campaign.deliverables:
                if item.payout_blocked:
                    item.payout_blocked = None
                    item.payout_attempt += 1
                    retried.append(item.index)
            await self._changed(
                "campaign.payouts_retried", None, {"indexes": retried, "reason": req.reason}
            )
            await self._pay_owed()
        return self.acknowledged()

    @retry_payouts.validator
    def _check_retry_payouts(self, req: RetryPayouts) -> None:
        state = self.campaign
        if (
            not state.parked_payout
            and not state.owed_payouts
            and not any(d.payout_blocked for d in state.deliverables)
        ):
            raise refuse(Refusal.INVALID_STATE, "no payout is blocked")

    @workflow.update
    async def set_frozen(self, req: SetFrozen) -> dict[str, Any]:
        """The admin's hold (the API's /freeze and /unfreeze). A card dispute's hold is its
        own (`card_dispute`): lifting one leaves the other."""
        async with self._lock:
            self._check_set_frozen(req)
            if req.frozen:
                await self._hold("admin", req.reason or "frozen by the platform")
            else:
                await self._lift(*[s for s in self._holds() if s in ("admin", LEGACY_HOLD)])
        return self.acknowledged()

    @set_frozen.validator
    def _check_set_frozen(self, req: SetFrozen) -> None:
        if self.campaign.phase in (CampaignStatus.DECLINED, CampaignStatus.EXPIRED):
            raise refuse(Refusal.INVALID_STATE, f"campaign is {self.campaign.phase.value}")
        held = {"admin", LEGACY_HOLD} & set(self._holds())
        if bool(held) == req.frozen:
            raise refuse(
                Refusal.INVALID_STATE, "already frozen" if req.frozen else "campaign is not frozen"
            )

    @workflow.update
    async def card_dispute(self, req: CardDispute) -> dict[str, Any]:
        """A card dispute on the funding charge: open → a hold of its own; won → that hold
        lifts; lost → the money goes back as a chargeback (SPEC §9). Stripe sends events
        out of order and twice: a dispute's final word is kept, and earlier news ignored."""
        async with self._lock:
            self._check_card_dispute(req)
            state = self.campaign
            source = f"card:{req.dispute_id}"
            state.card_disputes[req.dispute_id] = req.status
            if req.status == "open":
                await self._hold(source, f"charge dispute {req.dispute_id} ({req.reason})")
            elif req.status == "won":
                if not await self._lift(source):  # closed before Stripe said it opened
                    await self._changed(
                        "campaign.card_dispute_won", None, {"dispute_id": req.dispute_id}
                    )
            else:
                await self._charge_back(req)
                await self._lift(source)
        return self.acknowledged()

    @card_dispute.validator
    def _check_card_dispute(self, req: CardDispute) -> None:
        state = self.campaign
        if not state.funded_at:
            raise refuse(Refusal.INVALID_STATE, "the campaign was never funded")
        known = state.card_disputes.get(req.dispute_id)
        if known in ("won", "lost") or known == req.status:
            raise refuse(Refusal.INVALID_STATE, f"card dispute {req.dispute_id} is {known}")
        if known is None and len(state.card_disputes) >= MAX_CARD_DISPUTES:
            raise refuse(Refusal.VALIDATION_ERROR, "too many card disputes on one campaign")

    def _holds(self) -> dict[str, str]:
        state = self.campaign
        if state.frozen and not state.holds:  # frozen before holds had sources
            return {LEGACY_HOLD: state.frozen_reason or "frozen"}
        return state.holds

    async def _hold(self, source: str, reason: str) -> None:
        state = self.campaign
        first = not state.frozen
        state.holds = {**self._holds(), source: reason}
        if first:
            self._pause_or_restart_timers(frozen=True)
        state.frozen, state.frozen_reason = True, reason
        await self._changed(
            "campaign.frozen",
            None,
            {"reason": reason, "source": source},
            notify=state.parties(),
            notify_roles=["mediator"],
        )

    async def _lift(self, *sources: str) -> bool:
        """Lifts these holds; the campaign thaws once none is left. False: none was on."""
        state = self.campaign
        holds = {s: r for s, r in self._holds().items() if s not in sources}
        if holds == self._holds():
            return False
        state.holds = holds
        if holds:  # another hold stays: still frozen, for its reason
            state.frozen_reason = next(iter(holds.values()))
            await self._changed("campaign.hold_lifted", None, {"sources": list(sources)})
            return True
        self._pause_or_restart_timers(frozen=False)
        state.frozen, state.frozen_reason = False, None
        await self._changed(
            "campaign.unfrozen",
            None,
            {"reason": "", "sources": list(sources)},
            notify=state.parties(),
            notify_roles=["mediator"],
        )
        return True

    def _pause_or_restart_timers(self, frozen: bool) -> None:
        if not workflow.patched(FREEZE_PAUSES_TIMERS):
            return
        # One freeze rule: a freeze pauses deliverable timers exactly as a dispute does, so
        # nobody is overdue or auto-approved while the parties are blocked.
        now = workflow.now()
        for item in self.campaign.deliverables:
            if item.status == DeliverableStatus.DISPUTED:
                continue  # its dispute paused it and resumes it
            if frozen and item.paused_remaining is None:
                _pause_timer(item, now)
            elif not frozen and item.paused_remaining is not None:
                _restart_timer(item, now)

    async def _charge_back(self, req: CardDispute) -> None:
        """The card network returned `req.amount` to the brand from the platform's balance.
        What escrow still held for open deliverables covers it first (those deliverables
        end `charged_back`, any rest of their money refunded: the campaign cannot go on
        unfunded); beyond that the platform bears it, and what was owed to the creator
        for approved work goes to an admin decision — never paid silently."""
        state = self.campaign
        open_items = [d for d in state.deliverables if d.status not in FINAL]
        owed = sum(d.amount for d in open_items if d.status == DeliverableStatus.APPROVED)
        # Owed legs are held money too: a release owed to the creator joins what the admin
        # decides on; a refund owed to the brand is covered by what the network returned.
        owed += sum(leg.amount for leg in state.owed_payouts if leg.kind == "release")
        state.owed_payouts = []
        taken = min(req.amount, state.escrow.held)
        await _move_money(
            PaymentActivities.record_chargeback,
            RecordChargeback(
                idempotency_key=f"{state.id}:chargeback:{req.dispute_id}",
                campaign_id=state.id,
                currency=state.currency,
                amount=req.amount,
                reference=req.dispute_id,
            ),
        )
        state.escrow = state.escrow.charge_back(taken)
        for item in open_items:
            item.status = DeliverableStatus.CHARGED_BACK
            item.review_due_at = item.clears_at = None
            item.paused_remaining = item.frozen_from = None
        rest = state.escrow.held
        if rest:
            await self._refund_brand(f"{state.id}:refund:chargeback", rest)
        await self._changed(
            "campaign.chargeback_lost",
            None,
            {
                "dispute_id": req.dispute_id,
                "amount": req.amount,
                "charged_back": taken,
                "platform_loss": req.amount - taken,
                "refunded_rest": rest,
                "owed_to_creator": owed,
            },
            notify=state.parties(),
            notify_roles=["mediator"],
        )

    # --- reviews --------------------------------------------------------------------------------

    @workflow.update
    async def review(self, req: SubmitReview) -> dict[str, Any]:
        async with self._lock:
            side = self._check_review_campaign(req)
            state = self.campaign
            other = "creator" if side == "brand" else "brand"
            state.reviews.append(
                Review(
                    side=side,
                    by=req.actor_id,
                    subject_id=state.brand_id if other == "brand" else state.creator_id,
                    subject_agency_id=state.agency_of(other),
                    rating=req.rating,
                    comment=req.comment,
                    at=workflow.now(),
                )
            )
            revealed = state.reviews_visible
            await self._changed(
                "review.submitted",
                req.actor_id,
                {"side": side, "revealed": revealed},
                # Until revealed, the other side learns only that a review waits for theirs.
                notify=[p for p in state.parties() if p != req.actor_id]
                if revealed
                else state.members(other),
            )
        return {**state.review_by(side).model_dump(mode="json"), "visible": revealed}

    @review.validator
    def _check_review_campaign(self, req: SubmitReview) -> str:
        state = self.campaign
        side = state.require_either_side(req.actor_id)
        state.require_phase(CampaignStatus.COMPLETED)
        if state.reviews_closed or workflow.now() >= state.reviews_close_at:
            raise refuse(
                Refusal.INVALID_STATE,
                f"the review period closed at {rfc3339(state.reviews_close_at)}",
            )
        if state.review_by(side):
            raise refuse(Refusal.ALREADY_REVIEWED, f"the {side} side has already reviewed")
        return side

    # --- timers --------------------------------------------------------------------------------

    def _next_wake(self):
        wake = next_wake(self.campaign.deadlines(), self.campaign.reminders_sent)
        times = [t for t in (wake, self._proof_wake()) if t is not None]
        return min(times, default=None)

    def _time_to_continue_as_new(self, limit: int) -> bool:
        """A long history hands the whole state to a new run, once nothing is in flight:
        no Update running, no step holding the lock, and no dispute open (the campaign
        awaits its child's decision, which only this run can receive)."""
        return (
            history_is_long(limit)
            and self.campaign.dispute_id is None
            and not self._lock.locked()
            and workflow.all_handlers_finished()
        )

    async def _fire_due(self) -> None:
        await self._fire_deadlines()
        await self._remind()

    async def _remind(self) -> None:
        """Reminds whoever must act before a running deadline; a done step has none."""
        state = self.campaign
        state.reminders_sent, due = take_due_reminders(
            state.deadlines(), state.reminders_sent, workflow.now()
        )
        for deadline in due:
            await self._changed(
                f"reminder.{deadline.step}",
                None,
                reminder_data(deadline),
                notify=state.members(*deadline.to),
            )

    async def _fire_deadlines(self) -> None:
        """Everything whose deadline has passed, in one pass (several may share a moment)."""
        state, now = self.campaign, workflow.now()
        if state.phase == CampaignStatus.COMPLETED:
            if not state.reviews_closed and state.reviews_close_at <= now:
                state.reviews_closed = True
                await self._changed("campaign.reviews_closed", None, notify=state.parties())
            return
        if state.phase == CampaignStatus.AWAITING_ACCEPTANCE and state.accept_by <= now:
            self._end(CampaignStatus.EXPIRED)
            await self._changed("campaign.expired", None, {"waiting_for": "acceptance"})
            return
        if state.phase == CampaignStatus.AWAITING_FUNDING and state.fund_by <= now:
            if state.funding_key and workflow.patched(FIND_UNANSWERED_FUNDING):
                if await self._found_unanswered_funding():
                    return
            self._end(CampaignStatus.EXPIRED)
            await self._changed("campaign.expired", None, {"waiting_for": "funding"})
            return
        if state.phase not in (CampaignStatus.ACTIVE, CampaignStatus.CANCELLED):
            return
        if state.cancellation and state.cancellation.confirm_by <= now and not state.frozen:
            await self._cancel_after_funding(None, confirmed_by="silence")
        for item in state.deliverables:
            if item.paused_remaining is not None:
                continue
            if item.status in (DeliverableStatus.PENDING, DeliverableStatus.CHANGES_REQUESTED):
                if item.due_at and item.due_at <= now and state.phase == CampaignStatus.ACTIVE:
                    item.status = DeliverableStatus.OVERDUE
                    await self._changed(
                        "deliverable.overdue", None, {"index": item.index}, notify=state.parties()
                    )
            elif item.status == DeliverableStatus.SUBMITTED and item.review_due_at <= now:
                self._approve(item, "auto")
                await self._changed(
                    "deliverable.auto_approved", None, {"index": item.index}, notify=state.parties()
                )
            elif item.status == DeliverableStatus.APPROVED and item.tracking is not None:
                if not state.frozen and not item.payout_blocked:
                    await self._track(item)
            elif item.status == DeliverableStatus.APPROVED and item.clears_at <= now:
                if not state.frozen and not item.payout_blocked:
                    await self._release(item)
        if all(item.status in FINAL for item in state.deliverables):
            if state.phase == CampaignStatus.ACTIVE:
                state.phase = CampaignStatus.COMPLETED
                state.ended_at = now
                state.reviews_close_at = now + state.terms.review_period
                await self._changed("campaign.completed", None, notify=state.parties())

    async def _found_unanswered_funding(self) -> bool:
        """Before a campaign expires unfunded, a charge whose answer was lost is looked up:
        still settling, the campaign waits for it; captured, it is booked and refunded in
        full, so the brand is never charged for a campaign that did not run."""
        state = self.campaign
        found = await _move_money(
            PaymentActivities.find_funding,
            self._funding(state.funding_key or "", DEFAULT_PAYMENT_METHOD),
        )
        state.funding_key = None
        if found is None:
            return False
        if found.settling:
            state.phase = CampaignStatus.FUNDING_PENDING
            state.funding_key, state.funding_reference = found.idempotency_key, found.reference
            await self._changed("campaign.funding_pending", None, {"reference": found.reference})
            return True
        self._funded()
        await self._changed("campaign.funded", None, {"amount": state.budget, "late": True})
        for item in state.deliverables:
            await self._refund(item, None)
        state.phase = CampaignStatus.AWAITING_FUNDING  # it never ran: the caller ends it
        return False

    def _all_final(self) -> bool:
        """An active campaign whose every deliverable is done: time to complete it."""
        campaign = self.campaign
        return campaign.phase == CampaignStatus.ACTIVE and all(
            item.status in FINAL for item in campaign.deliverables
        )

    def _finished(self) -> bool:
        state = self.campaign
        if state.owed_payouts:
            return False  # open for the retry that sends them
        if state.phase in (CampaignStatus.DECLINED, CampaignStatus.EXPIRED):
            return True
        if state.phase == CampaignStatus.CANCELLED:
            return all(item.status in FINAL for item in state.deliverables) or not state.funded_at
        if state.phase == CampaignStatus.COMPLETED:
            # A chargeback keeps it open (frozen) until it is decided, reviews held back.
            return state.reviews_closed and not state.frozen
        return False

    # --- money ----------------------------------------------------------------------------------

    def _approve(self, item: Deliverable, by: str) -> None:
        now = workflow.now()
        item.status = DeliverableStatus.APPROVED
        item.approved_by = by
        item.approved_at = now
        item.review_due_at = None
        # Until it clears, a dispute may still be filed over it (SPEC §3.4).
        item.clears_at = now + self.campaign.terms.clearing_period
        # Under proof terms approval starts tracking; the release waits for the proof.
        proof = item.proof
        if proof is not None and workflow.patched(PROOF_OF_PERFORMANCE):
            submitted_at = item.submissions[-1].submitted_at
            item.tracking = start_tracking(proof, submitted_at, now, self._poll_every)

    async def _release(self, item: Deliverable) -> None:
        split = await self._pay_release(item, item.amount)
        if split is None:
            return
        item.status = DeliverableStatus.RELEASED
        await self._changed(
            "deliverable.released",
            None,
            {"index": item.index, **asdict(split)},
            notify=self.campaign.parties(),
        )

    async def _pay_release(self, item: Deliverable, gross: int) -> ReleaseSplit | None:
        """A deliverable's release leg; None when the rail refused it for good."""
        key = f"{self.campaign.id}:release:{item.index}"
        try:
            return await self._pay_creator(key, gross, attempt=item.payout_attempt)
        except ActivityError as err:
            if _error_type(err) != RAIL_REFUSED:
                raise
            # Parked, lock free: the money stays held and the parties go on acting.
            item.payout_blocked = _refusal_reason(err)
            await self._changed(
                "deliverable.payout_blocked",
                None,
                {"index": item.index, "reason": item.payout_blocked},
                notify=self.campaign.parties(),
            )
            return None

    async def _refund(self, item: Deliverable, actor: str | None) -> None:
        await self._refund_brand(f"{self.campaign.id}:refund:{item.index}", item.amount)
        item.status = DeliverableStatus.REFUNDED
        await self._changed(
            "deliverable.refunded", actor, {"index": item.index, "amount": item.amount}
        )

    def _commission_bps(self) -> int:
        state = self.campaign
        return state.terms.agency_commission_bps if state.agency_represents == "creator" else 0

    async def _pay_creator(self, key: str, gross: int, attempt: int | None = None) -> ReleaseSplit:
        """A gross amount to the creator side: fee and agency commission taken (SPEC §2).
        With an `attempt`, a refusal is the caller's to handle; without, the leg is owed."""
        state = self.campaign
        leg = PayoutLeg(kind="release", key=key, amount=gross)
        if attempt is not None:
            await self._move_leg(leg.model_copy(update={"attempt": attempt}))
        else:
            await self._until_paid(leg)
        return split_release(gross, state.terms.platform_fee_bps, self._commission_bps())

    async def _refund_brand(self, key: str, amount: int) -> None:
        await self._until_paid(PayoutLeg(kind="refund", key=key, amount=amount))

    async def _move_leg(self, leg: PayoutLeg) -> None:
        """One rail call for the leg, under its key and attempt; the escrow moves with it."""
        state = self.campaign
        if leg.kind == "release":
            fee_bps, commission_bps = state.terms.platform_fee_bps, self._commission_bps()
            split = split_release(leg.amount, fee_bps, commission_bps)
            await _move_money(
                PaymentActivities.release_funds,
                ReleaseFunds(
                    idempotency_key=leg.key,
                    campaign_id=state.id,
                    currency=state.currency,
                    gross=split.gross,
                    platform_fee=split.platform_fee,
                    agency_commission=split.agency_commission,
                    creator_net=split.creator_net,
                    creator_id=state.creator_id,
                    agency_id=state.agency_id if split.agency_commission else None,
                    attempt=leg.attempt,
                ),
            )
            state.escrow = state.escrow.release(leg.amount, fee_bps, commission_bps)
        else:
            await _move_money(
                PaymentActivities.refund_funds,
                RefundFunds(
                    idempotency_key=leg.key,
                    campaign_id=state.id,
                    currency=state.currency,
                    amount=leg.amount,
                    attempt=leg.attempt,
                ),
            )
            state.escrow = state.escrow.refund(leg.amount)

    async def _until_paid(self, leg: PayoutLeg) -> None:
        """A refund or settlement leg. One the rail refuses for good is owed: visible in the
        campaign, its money held, the parties told, and the step goes on without it —
        nothing waits behind it; `retry_payouts` sends it (`_pay_owed`). Runs that parked
        such a leg before owed payouts existed wait inside the step, as they recorded."""
        state = self.campaign
        while True:
            try:
                return await self._move_leg(leg)
            except ActivityError as err:
                if _error_type(err) != RAIL_REFUSED:
                    raise
                leg.reason = _refusal_reason(err)
                if workflow.patched(OWED_PAYOUTS):
                    # Booked with the step's next change, once the deliverables it paid for
                    # have ended: until then their amounts still count as open.
                    return self._owing.append(leg)
                seen = state.payout_retries
                state.parked_payout = f"{leg.kind} {leg.key}: {leg.reason}"
                await self._payout_blocked(leg)
                await workflow.wait_condition(lambda seen=seen: self.campaign.payout_retries > seen)
                state.parked_payout = None
                leg.attempt += 1

    async def _pay_owed(self) -> None:
        """Each owed leg once more, under its next key; refused again, it stays owed with
        the rail's new reason. Nothing moves while the campaign is frozen."""
        state = self.campaign
        for leg in [] if state.frozen else list(state.owed_payouts):
            leg.attempt += 1
            try:
                await self._move_leg(leg)
            except ActivityError as err:
                if _error_type(err) != RAIL_REFUSED:
                    raise
                leg.reason = _refusal_reason(err)
                await self._payout_blocked(leg)
                continue
            state.owed_payouts.remove(leg)
            await self._changed(
                "campaign.payout_sent",
                None,
                {"leg": f"{leg.kind} {leg.key}", "amount": leg.amount, "attempt": leg.attempt},
                notify=state.parties(),
            )

    async def _payout_blocked(self, leg: PayoutLeg) -> None:
        await self._changed(
            "campaign.payout_blocked",
            None,
            {"leg": f"{leg.kind} {leg.key}", "reason": leg.reason},
            notify=self.campaign.parties(),
        )

    async def _refund_resumed_after_cancellation(self, items: list[Deliverable]) -> None:
        """A campaign cancelled (by silence) while a dispute held some deliverables: once the
        dispute ends undecided they come back unapproved, and the cancellation refunds
        them as it refunded the others — nothing stays pending in a cancelled campaign."""
        if self.campaign.phase != CampaignStatus.CANCELLED:
            return
        resumed = [item for item in items if item.status in UNAPPROVED]
        if resumed and workflow.patched(REFUND_RESUMED_AFTER_CANCELLATION):
            for item in resumed:
                await self._refund(item, None)

    async def _cancel_after_funding(self, actor: str | None, confirmed_by: str) -> None:
        """Refund what is not yet approved; approved deliverables still clear and release."""
        state = self.campaign
        for item in state.deliverables:
            if item.status in UNAPPROVED:
                await self._refund(item, actor)
        # Reported cancelled only once every refund is through.
        state.cancellation = None
        self._end(CampaignStatus.CANCELLED)
        await self._changed(
            "campaign.cancelled", actor, {"confirmed_by": confirmed_by}, notify=state.parties()
        )

    # --- shared checks and bookkeeping -------------------------------------------------------

    def _check_not_stranded(self) -> None:
        # A failed workflow task halts this campaign visibly (and moves no money) rather
        # than leaving escrow where no step will ever move it.
        if problems := self.campaign.stranded():
            raise RuntimeError("stranded escrow: " + "; ".join(problems))

    def _check_active_action(self, req: Action, side: str) -> None:
        self.campaign.require_side(req.actor_id, side)
        self.campaign.require_phase(CampaignStatus.ACTIVE)
        self.campaign.require_not_frozen()

    def _end(self, phase: CampaignStatus) -> None:
        self.campaign.phase = phase
        self.campaign.ended_at = workflow.now()

    async def _changed(
        self,
        kind: str,
        actor: str | None,
        data: dict[str, Any] | None = None,
        notify: list[str] | None = None,
        notify_roles: list[str] | None = None,
    ) -> None:
        """Records a state change: read model, timeline, inbox; then the UI's view of it.
        Legs owed during the step are booked with it — the change that ends the deliverables
        they paid for — and then announced."""
        state = self.campaign
        owing, self._owing = self._owing, []
        state.owed_payouts += owing
        if problems := state.invariant_violations():
            raise RuntimeError("escrow invariant: " + "; ".join(problems))
        state.version = next_version(state.version)
        recipients = notify if notify is not None else [p for p in state.parties() if p != actor]
        await record(
            RecordActivities.record_campaign_change,
            CampaignChange(
                campaign_id=state.id,
                version=state.version,
                status=state.status.value,
                title=state.title,
                brand_id=state.brand_id,
                creator_id=state.creator_id,
                agency_id=state.agency_id,
                snapshot=state.public(),
                event=TimelineEntry(
                    seq=state.version, at=workflow.now(), kind=kind, actor=actor, data=data or {}
                ),
                notify=recipients,
                notify_roles=notify_roles or [],
                reviews=state.reviews,
                reviews_visible=state.reviews_visible,
            ),
        )
        self._publish()
        for leg in owing:
            await self._payout_blocked(leg)

    def _publish(self) -> None:
        """Search attributes and current details for the Temporal UI, when they change."""
        state = self.campaign
        deadline = state.next_deadline()
        attributes = {"stage": state.status.value, "deadline": deadline}
        if attributes != self._published:
            updates = [sa.STAGE.value_set(state.status.value), sa.CAMPAIGN.value_set(state.id)]
            updates.append(
                sa.DEADLINE.value_set(deadline) if deadline else sa.DEADLINE.value_unset()
            )
            workflow.upsert_search_attributes(updates)
            self._published = attributes
        workflow.set_current_details(self._details())

    def console_details(self, links: Any, now: datetime) -> str:
        """The details as the UI reads them (workflows/console.py): the deadline measured
        against the wall clock at reading time. Query-time only."""
        return self._details(max(now, workflow.now()))

    def _details(self, now: datetime | None = None) -> str:
        state, escrow = self.campaign, self.campaign.escrow
        deadline = state.next_deadline()
        now = now or workflow.now()

        def money(amount: int) -> str:
            return format_money(amount, state.currency)

        lines = [
            f"## {state.title}",
            f"**Status:** `{state.status.value}` · **Next deadline:** "
            + (
                f"{rfc3339(deadline)} — **{relative(deadline, now)}** (as of {rfc3339(now)})"
                if deadline
                else "—"
            ),
            f"**Brand:** {party(state.brand_id, self._names)} · "
            f"**Creator:** {party(state.creator_id, self._names)}"
            + (
                f" · **Agency** (for the {state.agency_represents}): "
                f"{party(state.agency_id, self._names)}"
                if state.agency_id
                else ""
            ),
            "",
            f"**Escrow ({state.currency}):** funded {money(escrow.funded)} · "
            f"held {money(escrow.held)} · to creator {money(escrow.released_to_creator)} · "
            f"agency {money(escrow.agency_commission)} · fee {money(escrow.platform_fee)} · "
            f"refunded {money(escrow.refunded_to_brand)}",
            "",
            "| # | deliverable | amount | status |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {d.index} | {one_line(d.title, 120)} | {money(d.amount)} | `{d.status.value}` |"
            for d in state.deliverables
        ]
        lines += _proof_lines(state.deliverables)
        if state.frozen:
            lines += ["", f"**Frozen:** {state.frozen_reason or 'funding charge disputed'}"]
        return "\n".join(lines)


def _proof_lines(items: list[Deliverable]) -> list[str]:
    """Objective progress of the deliverables being tracked, for the UI's details (at most
    ten lines: the `state` query has everything)."""
    tracked = [d for d in items if d.tracking and d.status == DeliverableStatus.APPROVED]
    lines = []
    for item in tracked[:10]:
        tracking = item.tracking
        goals = ", ".join(
            f"{p.metric.value} {p.achieved:,}/{p.target:,}{' ✓' if p.achieved >= p.target else ''}"
            for p in tracking.progress
        )
        state = (
            f"post down, cure by {rfc3339(tracking.cure_by)}"
            if tracking.cure_by
            else f"decides {rfc3339(tracking.decide_at(item.clears_at))}"
        )
        lines.append(f"**Proof #{item.index}:** {goals or 'live period only'} · {state}")
    return ["", *lines] if lines else []


def _pause_timer(item: Deliverable, now) -> None:
    """Stops the deliverable's running timer (due, review or clearing), keeping the time it
    had left: a dispute and a freeze pause it alike (SPEC §4)."""
    field = timer_field(item.status)
    deadline = getattr(item, field) if field else None
    item.paused_remaining = max(deadline - now, timedelta(0)) if deadline else None


def _restart_timer(item: Deliverable, now) -> None:
    field = timer_field(item.status)
    if field and item.paused_remaining is not None:
        setattr(item, field, now + item.paused_remaining)
    item.paused_remaining = None


def _freeze(item: Deliverable, now) -> None:
    """Disputed: its timer paused and its status kept aside until the dispute ends."""
    _pause_timer(item, now)
    item.frozen_from = item.status
    item.status = DeliverableStatus.DISPUTED


def _resume(item: Deliverable, now) -> None:
    """Back to where it was, its timer running again with the time it had left."""
    item.status = item.frozen_from
    item.frozen_from = None
    _restart_timer(item, now)


def _count(item: Deliverable) -> int:
    """How many submissions a deliverable has had (older ones may have left the state)."""
    latest = item.submissions[-1]
    return latest.number if latest.number is not None else len(item.submissions)


def _kept(submissions: list[Submission]) -> list[Submission]:
    """Submissions recorded before their content moved to the timeline stay (they exist
    nowhere else); later ones give way to the newest."""
    return [s for s in submissions if s.sha256 is None]


def _child_end(err: ChildWorkflowError) -> str:
    """How a dispute child ended without a decision, for the timeline."""
    cause = err.cause
    if isinstance(cause, TerminatedError):
        return "terminated"
    if isinstance(cause, CancelledError):
        return "cancelled"
    if isinstance(cause, ChildTimeoutError):
        return "timed_out"
    return "failed"


async def _move_money(activity: Callable[..., Awaitable[Any]], arg: Any, **options: Any) -> Any:
    """Every money activity (a `PaymentActivities` method) with the same timeout and the
    rail's retries (MONEY_RETRY)."""
    return await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=MONEY_RETRY, **options
    )


def _refusal_reason(err: ActivityError) -> str:
    cause = err.cause
    return (cause.message if isinstance(cause, ApplicationError) else str(err))[:300]


def _error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None
