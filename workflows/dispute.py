"""DisputeWorkflow (`dispute-{id}`), a child of its campaign (SPEC §4, §5).

It walks the stages — response, negotiation, mediation, proposal, arbitration — each with its
deadline, and returns the outcome (an exact split of the disputed amount) or None when the
claimant withdraws. The campaign, which owns the escrow, executes the split. Mediators drive
it from the API or from the Temporal UI: their Updates take the API's JSON plus
`mediator_id`, and validators refuse bad input with a message the UI shows.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError

from workflows.records import record
from workflows.timers import history_is_long, next_version, sleep_until_due

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordActivities
    from domain import search_attributes as sa
    from domain.contract import rfc3339
    from domain.deadlines import next_wake, reminder_data, take_due_reminders
    from domain.display import format_money, one_line, party, relative
    from domain.dispute import (
        CLOSED,
        DISPUTE_DECIDED,
        MAX_EVIDENCE_ITEMS,
        MAX_EVIDENCE_REQUESTS,
        MAX_OFFERS,
        AcceptOffer,
        AddEvidence,
        AssignMediator,
        DisputeContext,
        DisputeResult,
        DisputeState,
        IssueRuling,
        MakeOffer,
        NewDispute,
        Offer,
        Outcome,
        PartyAction,
        Proposal,
        ProposeSettlement,
        RequestEvidence,
        Respond,
        Ruling,
        Split,
        Stage,
    )
    from domain.errors import Refusal, refuse
    from domain.records import DisputeChange, TimelineEntry


# workflow.patched ids (see README, "Changing workflow code").
SIGNAL_CAMPAIGN_ON_CLOSE = "signal-campaign-on-close"
OVERDUE_ATTRIBUTE = "overdue-search-attribute"  # ParleyOverdue upserted with the others

# The current details' bounds: texts cut to this many characters, lists to their latest items.
DETAILS_TEXT_CAP, DETAILS_LIST_CAP, DETAILS_REQUESTS_CAP = 600, 15, 5

# What an evidence item's console link says it does (workflows/console.py signs it).
EVIDENCE_VERB = {"file": "download", "link": "open", "text": "read", "message": "read"}

# The capped lists (their caps: domain/dispute.py), as the refusals name them.
EVIDENCE, OFFERS, EVIDENCE_REQUESTS = "evidence items", "offers", "evidence requests"

NEXT_UPDATE = {
    Stage.AWAITING_RESPONSE: "respondent: `respond` (API `POST /v1/disputes/{id}/respond`)",
    Stage.NEGOTIATION: "parties: offers, `accept_offer` or `escalate`",
    Stage.MEDIATION: "mediator: `assign_mediator`, then `request_evidence` or `propose_settlement`",
    Stage.AWAITING_ACCEPTANCE: "parties: `accept_proposal` / `reject_proposal` (silence accepts)",
    Stage.ARBITRATION: "assigned mediator: `issue_ruling` with a rationale",
}


@workflow.defn
class DisputeWorkflow:
    @workflow.init
    def __init__(self, new: NewDispute) -> None:
        now = workflow.now()
        self.dispute = new.carried or DisputeState(
            id=new.id,
            campaign_id=new.campaign_id,
            campaign_title=new.campaign_title,
            currency=new.currency,
            stage=Stage.AWAITING_RESPONSE,
            brand_id=new.brand_id,
            creator_id=new.creator_id,
            agency_id=new.agency_id,
            agency_represents=new.agency_represents,
            claimant=new.claimant_id,
            claimant_side=new.claimant_side,
            respondent_side="creator" if new.claimant_side == "brand" else "brand",
            reason=new.reason,
            statement=new.statement,
            deliverables=new.deliverables,
            disputed_amount=new.disputed_amount,
            claim=new.claim,
            terms=new.terms,
            filed_at=now,
            deadline=now + new.terms.response_window,
            evidence=list(new.evidence),
        )
        self.answered = dict(new.answered)  # see workflows/repeats.py
        self._lock = asyncio.Lock()
        # Updates accepted but not yet applied, per capped list (see `_lock_admitted`).
        self._admitted: Counter[str] = Counter()
        self._ready = False
        self._published: tuple | None = None

    @workflow.run
    async def run(self, new: NewDispute) -> DisputeResult:
        if new.carried is None:
            await self._changed("dispute.filed", new.claimant_id, notify=self.dispute.parties())
        else:
            self._publish()  # a continued run: the UI's view as the last run left it
        self._ready = True
        while self.dispute.stage not in CLOSED:
            if self._time_to_continue_as_new(new.history_limit):
                # The campaign awaiting this child follows it to the new run.
                workflow.continue_as_new(
                    new.model_copy(update={"carried": self.dispute, "answered": self.answered})
                )
            try:
                await sleep_until_due(
                    self._next_wake,
                    lambda: (
                        self.dispute.stage in CLOSED
                        or self._time_to_continue_as_new(new.history_limit)
                    ),
                )
                async with self._lock:
                    await self._fire_due()
            except asyncio.CancelledError:
                # "Request Cancellation" in the Temporal UI would end the case with nothing
                # decided: refused and recorded. Withdrawal or a decision ends a dispute.
                async with self._lock:
                    await self._changed("dispute.cancellation_request_refused", None, notify=[])
        await workflow.wait_condition(workflow.all_handlers_finished)
        result = DisputeResult(dispute_id=self.dispute.id, outcome=self.dispute.outcome)
        if workflow.patched(SIGNAL_CAMPAIGN_ON_CLOSE):
            await self._tell_campaign(result)
        return result

    async def _tell_campaign(self, result: DisputeResult) -> None:
        """Besides returning to its parent run, the dispute signals the campaign by id: a
        campaign restored by a reset is a new run that the child would never report to."""
        campaign = workflow.get_external_workflow_handle(f"campaign-{self.dispute.campaign_id}")
        try:
            await campaign.signal(DISPUTE_DECIDED, result)
        except FailureError as err:
            # The campaign has ended (or is terminated, awaiting a restore, which reads this
            # dispute's result itself): nothing more to tell.
            workflow.logger.warning("campaign not told of %s: %s", self.dispute.id, err)

    def acknowledged(self) -> dict[str, Any]:
        """What every Update answers: small and fixed-size, because each answer is stored in
        the history; the caller reads the dispute through the `state` query."""
        return {"dispute_id": self.dispute.id, "version": self.dispute.version}

    @workflow.update
    async def filed(self, context: DisputeContext | None = None) -> dict[str, Any]:
        """Answers once the filing is recorded, so the API can read its own write. The API
        sends (signed) the parties' names and the disputed work for the UI's details; runs
        filed before that send nothing and show ids. Display only: no command, so no patch."""
        await workflow.wait_condition(lambda: self._ready)
        if context is not None and self.dispute.context is None:
            self.dispute.context = context
            self._publish()
        return self.acknowledged()

    @filed.validator
    def _check_filed(self, context: DisputeContext | None = None) -> None:
        if context is not None and self.dispute.context is not None:
            raise refuse(Refusal.INVALID_STATE, "the filing's context is already recorded")

    @workflow.query
    def state(self) -> dict[str, Any]:
        """The whole dispute (SPEC §5)."""
        return self.view()

    def view(self) -> dict[str, Any]:
        data = self.dispute.model_dump(
            mode="json", exclude={"version", "reminders_sent", "context", "overdue_since"}
        )
        data["claimant_id"] = self.dispute.claimant
        data["respondent"] = self.dispute.respondent_side
        data["respondent_id"] = self.dispute.respondent
        return data

    # --- response and negotiation -----------------------------------------------------------

    @workflow.update
    async def respond(self, req: Respond) -> dict[str, Any]:
        async with self._lock:
            self._check_respond(req)
            state = self.dispute
            state.response = req.statement
            if req.accept_claim:
                await self._resolve(state.claim, "acceptance", req.actor_id)
            else:
                self._enter(Stage.NEGOTIATION, state.terms.negotiation_window)
                await self._changed("dispute.responded", req.actor_id)
        return self.acknowledged()

    @respond.validator
    def _check_respond(self, req: Respond) -> None:
        self._require_stage(Stage.AWAITING_RESPONSE)
        if self.dispute.side_of(req.actor_id) != self.dispute.respondent_side:
            raise refuse(Refusal.FORBIDDEN, "only the respondent responds")

    @workflow.update
    async def make_offer(self, req: MakeOffer) -> dict[str, Any]:
        async with self._lock_admitted(OFFERS):
            side = self._check_make_offer(req)
            state = self.dispute
            for offer in state.offers:
                if offer.side == side and offer.status == "open":
                    offer.status = "superseded"
            offer = Offer(
                id=f"ofr_{len(state.offers) + 1}",
                by=req.actor_id,
                side=side,
                split=Split(
                    release_to_creator=req.release_to_creator, refund_to_brand=req.refund_to_brand
                ),
                at=workflow.now(),
            )
            state.offers.append(offer)
            await self._changed("dispute.offer_made", req.actor_id, {"offer_id": offer.id})
        return {**self.acknowledged(), "offer_id": offer.id}

    @make_offer.validator
    def _validate_make_offer(self, req: MakeOffer) -> None:
        self._check_make_offer(req)
        self._require_room(OFFERS, len(self.dispute.offers), MAX_OFFERS)

    def _check_make_offer(self, req: MakeOffer) -> str:
        self._require_stage(Stage.NEGOTIATION)
        side = self._require_party(req.actor_id)
        self._require_exact(req.release_to_creator, req.refund_to_brand)
        return side

    @workflow.update
    async def accept_offer(self, req: AcceptOffer) -> dict[str, Any]:
        async with self._lock:
            offer = self._check_accept_offer(req)
            offer.status = "accepted"
            await self._resolve(offer.split, "agreement", req.actor_id)
        return self.acknowledged()

    @accept_offer.validator
    def _check_accept_offer(self, req: AcceptOffer) -> Offer:
        self._require_stage(Stage.NEGOTIATION)
        side = self._require_party(req.actor_id)
        offer = next((o for o in self.dispute.offers if o.id == req.offer_id), None)
        if offer is None:
            raise refuse(Refusal.NOT_FOUND, f"no offer {req.offer_id}")
        if offer.status != "open":
            raise refuse(Refusal.INVALID_STATE, f"offer {offer.id} is {offer.status}")
        if offer.side == side:
            raise refuse(Refusal.FORBIDDEN, "the other side accepts an offer")
        return offer

    @workflow.update
    async def escalate(self, req: PartyAction) -> dict[str, Any]:
        async with self._lock:
            self._check_escalate(req)
            self._enter(Stage.MEDIATION, self.dispute.terms.mediation_window)
            await self._changed("dispute.escalated", req.actor_id, notify_roles=["mediator"])
        return self.acknowledged()

    @escalate.validator
    def _check_escalate(self, req: PartyAction) -> None:
        self._require_stage(Stage.NEGOTIATION)
        self._require_party(req.actor_id)

    @workflow.update
    async def withdraw(self, req: PartyAction) -> dict[str, Any]:
        async with self._lock:
            self._check_withdraw(req)
            self.dispute.stage = Stage.WITHDRAWN
            self.dispute.deadline = None
            self.dispute.closed_at = workflow.now()
            await self._changed("dispute.withdrawn", req.actor_id, notify=self._everyone())
        return self.acknowledged()

    @withdraw.validator
    def _check_withdraw(self, req: PartyAction) -> None:
        if self.dispute.stage in CLOSED:
            raise refuse(Refusal.INVALID_STATE, f"dispute is {self.dispute.stage.value}")
        if self.dispute.side_of(req.actor_id) != self.dispute.claimant_side:
            raise refuse(Refusal.FORBIDDEN, "only the claimant withdraws")

    # --- evidence ---------------------------------------------------------------------------

    @workflow.update
    async def add_evidence(self, req: AddEvidence) -> dict[str, Any]:
        async with self._lock_admitted(EVIDENCE):
            self._check_add_evidence(req)
            self.dispute.evidence.append(req.item)
            await self._changed(
                "dispute.evidence_added", req.actor_id, {"evidence_id": req.item.id}
            )
        return {**self.acknowledged(), "evidence_id": req.item.id}

    @add_evidence.validator
    def _validate_add_evidence(self, req: AddEvidence) -> None:
        self._check_add_evidence(req)
        self._require_room(EVIDENCE, len(self.dispute.evidence), MAX_EVIDENCE_ITEMS)
        # The text stays outside the workflow (the API stores it by sha256): an item sent
        # around the API with its text inline, or with oversized metadata, is refused.
        problem = req.item.refusal()
        if problem:
            raise refuse(Refusal.VALIDATION_ERROR, problem)

    def _check_add_evidence(self, req: AddEvidence) -> None:
        if self.dispute.stage in CLOSED:
            raise refuse(Refusal.INVALID_STATE, f"dispute is {self.dispute.stage.value}")
        if not self.dispute.side_of(req.actor_id) and req.actor_id != self.dispute.mediator_id:
            raise refuse(
                Refusal.FORBIDDEN, "only the parties and the assigned mediator add evidence"
            )
        if any(item.id == req.item.id for item in self.dispute.evidence):
            raise refuse(Refusal.INVALID_STATE, f"evidence {req.item.id} already added")

    # --- mediation --------------------------------------------------------------------------

    @workflow.update
    async def assign_mediator(self, req: AssignMediator) -> dict[str, Any]:
        async with self._lock:
            self._check_assign(req)
            previous = self.dispute.mediator_id
            self.dispute.mediator_id = req.mediator_id
            await self._changed(
                "dispute.mediator_assigned",
                req.mediator_id,
                {"mediator_id": req.mediator_id, "previous": previous},
                notify=self._everyone(),
            )
        return self.acknowledged()

    @assign_mediator.validator
    def _check_assign(self, req: AssignMediator) -> None:
        self._require_stage(Stage.MEDIATION, Stage.AWAITING_ACCEPTANCE, Stage.ARBITRATION)
        current = self.dispute.mediator_id
        if current == req.mediator_id:
            raise refuse(Refusal.INVALID_STATE, f"{current} is already assigned")
        if current and not req.reassign:
            raise refuse(Refusal.INVALID_STATE, f"mediator {current} is already assigned")

    @workflow.update
    async def request_evidence(self, req: RequestEvidence) -> dict[str, Any]:
        async with self._lock_admitted(EVIDENCE_REQUESTS):
            self._check_request_evidence(req)
            request = {"note": req.note, "from_side": req.from_side, "at": workflow.now()}
            self.dispute.evidence_requests.append(request)
            notify = self.dispute.parties()
            if req.from_side:
                notify = [p for p in notify if self.dispute.side_of(p) == req.from_side]
            await self._changed(
                "dispute.evidence_requested", req.mediator_id, {"note": req.note}, notify=notify
            )
        return self.acknowledged()

    @request_evidence.validator
    def _validate_request_evidence(self, req: RequestEvidence) -> None:
        self._check_request_evidence(req)
        requests = len(self.dispute.evidence_requests)
        self._require_room(EVIDENCE_REQUESTS, requests, MAX_EVIDENCE_REQUESTS)

    def _check_request_evidence(self, req: RequestEvidence) -> None:
        self._require_stage(Stage.MEDIATION, Stage.AWAITING_ACCEPTANCE, Stage.ARBITRATION)
        self._require_assigned(req.mediator_id)

    @workflow.update
    async def propose_settlement(self, req: ProposeSettlement) -> dict[str, Any]:
        async with self._lock:
            self._check_propose(req)
            state = self.dispute
            state.proposal = Proposal(
                mediator_id=req.mediator_id,
                split=Split(
                    release_to_creator=req.release_to_creator, refund_to_brand=req.refund_to_brand
                ),
                rationale=req.rationale,
                at=workflow.now(),
            )
            state.mediator_overdue = False
            self._enter(Stage.AWAITING_ACCEPTANCE, state.terms.proposal_window)
            await self._changed(
                "dispute.settlement_proposed", req.mediator_id, notify=self._everyone()
            )
        return self.acknowledged()

    @propose_settlement.validator
    def _check_propose(self, req: ProposeSettlement) -> None:
        self._require_stage(Stage.MEDIATION)
        self._require_assigned(req.mediator_id)
        self._require_exact(req.release_to_creator, req.refund_to_brand)

    @workflow.update
    async def accept_proposal(self, req: PartyAction) -> dict[str, Any]:
        async with self._lock:
            side = self._check_answer_proposal(req)
            proposal = self.dispute.proposal
            if side not in proposal.accepted_by:
                proposal.accepted_by.append(side)
            if {"brand", "creator"} <= set(proposal.accepted_by):
                await self._resolve(proposal.split, "mediated_agreement", req.actor_id)
            else:
                await self._changed("dispute.proposal_accepted", req.actor_id, {"side": side})
        return self.acknowledged()

    @workflow.update
    async def reject_proposal(self, req: PartyAction) -> dict[str, Any]:
        async with self._lock:
            side = self._check_answer_proposal(req)
            self._enter(Stage.ARBITRATION, self.dispute.terms.arbitration_window)
            await self._changed(
                "dispute.proposal_rejected", req.actor_id, {"side": side}, notify=self._everyone()
            )
        return self.acknowledged()

    @accept_proposal.validator
    def _validate_accept_proposal(self, req: PartyAction) -> None:
        self._check_answer_proposal(req)

    @reject_proposal.validator
    def _check_answer_proposal(self, req: PartyAction) -> str:
        self._require_stage(Stage.AWAITING_ACCEPTANCE)
        return self._require_party(req.actor_id)

    @workflow.update
    async def issue_ruling(self, req: IssueRuling) -> dict[str, Any]:
        async with self._lock:
            self._check_ruling(req)
            split = Split(
                release_to_creator=req.release_to_creator, refund_to_brand=req.refund_to_brand
            )
            self.dispute.ruling = Ruling(
                mediator_id=req.mediator_id, split=split, rationale=req.rationale, at=workflow.now()
            )
            await self._resolve(split, "ruling", req.mediator_id)
        return self.acknowledged()

    @issue_ruling.validator
    def _check_ruling(self, req: IssueRuling) -> None:
        self._require_stage(Stage.ARBITRATION)
        self._require_assigned(req.mediator_id)
        self._require_exact(req.release_to_creator, req.refund_to_brand)

    # --- deadlines ---------------------------------------------------------------------------

    def _next_wake(self):
        return next_wake(self.dispute.deadlines(), self.dispute.reminders_sent)

    def _time_to_continue_as_new(self, limit: int) -> bool:
        return (
            history_is_long(limit) and not self._lock.locked() and workflow.all_handlers_finished()
        )

    async def _fire_due(self) -> None:
        await self._fire_deadline()
        await self._remind()

    async def _remind(self) -> None:
        """Reminds whoever must act before the stage's deadline, once, never after it."""
        state = self.dispute
        state.reminders_sent, due = take_due_reminders(
            state.deadlines(), state.reminders_sent, workflow.now()
        )
        for deadline in due:
            mediators = "mediator" in deadline.to
            await self._changed(
                f"reminder.{deadline.step}",
                None,
                reminder_data(deadline),
                notify=state.members(*deadline.to)
                + ([state.mediator_id] if mediators and state.mediator_id else []),
                # Nobody assigned yet: every mediator sees the queue's reminder.
                notify_roles=["mediator"] if mediators and not state.mediator_id else [],
            )

    async def _fire_deadline(self) -> None:
        state, now = self.dispute, workflow.now()
        if state.deadline is None or state.deadline > now:
            return
        if state.stage == Stage.AWAITING_RESPONSE:
            await self._resolve(state.claim, "default", None)  # the claim stands unanswered
        elif state.stage == Stage.NEGOTIATION:
            self._enter(Stage.MEDIATION, state.terms.mediation_window)
            await self._changed(
                "dispute.escalated", None, {"by": "deadline"}, notify_roles=["mediator"]
            )
        elif state.stage == Stage.AWAITING_ACCEPTANCE:
            await self._resolve(state.proposal.split, "mediated_agreement", None)  # silence accepts
        elif state.stage in (Stage.MEDIATION, Stage.ARBITRATION):
            # No automatic decision: flag it and tell every mediator (SPEC §4).
            state.mediator_overdue = True
            state.overdue_since, state.deadline = state.deadline, None
            await self._changed(
                "dispute.mediator_overdue",
                None,
                {"stage": state.stage.value},
                notify=[state.mediator_id] if state.mediator_id else [],
                notify_roles=["mediator"],
            )

    # --- helpers ----------------------------------------------------------------------------

    def _enter(self, stage: Stage, window: timedelta) -> None:
        self.dispute.stage = stage
        self.dispute.deadline = workflow.now() + window
        self.dispute.mediator_overdue = False

    async def _resolve(self, split: Split, by: str, actor: str | None) -> None:
        state = self.dispute
        state.outcome = Outcome(
            release_to_creator=split.release_to_creator,
            refund_to_brand=split.refund_to_brand,
            by=by,
        )
        state.stage = Stage.RESOLVED
        state.deadline = None
        state.closed_at = workflow.now()
        await self._changed(
            "dispute.resolved", actor, state.outcome.model_dump(), notify=self._everyone()
        )

    def _everyone(self) -> list[str]:
        people = self.dispute.parties()
        return people + [self.dispute.mediator_id] if self.dispute.mediator_id else people

    def _require_stage(self, *stages: Stage) -> None:
        if self.dispute.stage not in stages:
            allowed = " or ".join(s.value for s in stages)
            raise refuse(
                Refusal.INVALID_STATE, f"dispute is {self.dispute.stage.value}, not {allowed}"
            )

    def _require_party(self, actor_id: str) -> str:
        side = self.dispute.side_of(actor_id)
        if side is None:
            raise refuse(Refusal.FORBIDDEN, "only the campaign's parties may do this")
        return side

    def _require_assigned(self, mediator_id: str) -> None:
        if self.dispute.mediator_id is None:
            raise refuse(Refusal.INVALID_STATE, "assign a mediator first (`assign_mediator`)")
        if self.dispute.mediator_id != mediator_id:
            raise refuse(
                Refusal.FORBIDDEN,
                f"only the assigned mediator {self.dispute.mediator_id} may do this",
            )

    # --- caps (issue #11) ----------------------------------------------------------------------
    #
    # Checked in the validators only. Handlers re-run the older checks under the lock, but not
    # these: a handler that refused what an older run accepted (a 50,000-char text, a 101st
    # offer) would change that run's commands on replay. So that concurrent Updates cannot pass
    # a cap, a validator counts what is held plus what it admitted earlier that still waits for
    # the lock (`_admitted`): a handler counts itself from its first step — in the same task as
    # its validator, before anything yields — until it holds the lock, where it appends before
    # it awaits anything. Pure state, no commands: replay-safe.

    @asynccontextmanager
    async def _lock_admitted(self, what: str) -> AsyncIterator[None]:
        self._admitted[what] += 1
        try:
            await self._lock.acquire()
        finally:
            self._admitted[what] -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _require_room(self, what: str, held: int, cap: int) -> None:
        if held + self._admitted[what] >= cap:
            raise refuse(Refusal.VALIDATION_ERROR, f"a dispute holds at most {cap} {what}")

    def _require_exact(self, release_to_creator: int, refund_to_brand: int) -> None:
        if release_to_creator + refund_to_brand != self.dispute.disputed_amount:
            raise refuse(
                Refusal.VALIDATION_ERROR,
                f"release_to_creator + refund_to_brand must equal the disputed amount "
                f"{self.dispute.disputed_amount} (got {release_to_creator} + {refund_to_brand})",
            )

    async def _changed(
        self,
        kind: str,
        actor: str | None,
        data: dict[str, Any] | None = None,
        notify: list[str] | None = None,
        notify_roles: list[str] | None = None,
    ) -> None:
        state = self.dispute
        state.version = next_version(state.version)
        recipients = notify if notify is not None else [p for p in self._everyone() if p != actor]
        await record(
            RecordActivities.record_dispute_change,
            DisputeChange(
                dispute_id=state.id,
                campaign_id=state.campaign_id,
                version=state.version,
                stage=state.stage.value,
                mediator_id=state.mediator_id,
                brand_id=state.brand_id,
                creator_id=state.creator_id,
                agency_id=state.agency_id,
                title=state.campaign_title,
                snapshot=self.view(),
                event=TimelineEntry(
                    seq=state.version, at=workflow.now(), kind=kind, actor=actor, data=data or {}
                ),
                notify=recipients,
                notify_roles=notify_roles or [],
            ),
        )
        self._publish()

    def _publish(self) -> None:
        """Search attributes when they change (offers and evidence leave them alone), and
        the current details every time."""
        state = self.dispute
        # ParleyOverdue (issue #12): the overdue queue once ParleyDeadline is gone. Runs
        # recorded before it upsert exactly what they did.
        overdue = (state.mediator_overdue,) if workflow.patched(OVERDUE_ATTRIBUTE) else ()
        published = (state.stage, state.mediator_id, state.deadline, *overdue)
        if published != self._published:
            self._published = published
            workflow.upsert_search_attributes(
                [
                    sa.STAGE.value_set(state.stage.value),
                    sa.CAMPAIGN.value_set(state.campaign_id),
                    sa.AMOUNT.value_set(state.disputed_amount),
                    sa.MEDIATOR.value_set(state.mediator_id)
                    if state.mediator_id
                    else sa.MEDIATOR.value_unset(),
                    sa.DEADLINE.value_set(state.deadline)
                    if state.deadline
                    else sa.DEADLINE.value_unset(),
                ]
                + [sa.OVERDUE.value_set(flag) for flag in overdue]
            )
        workflow.set_current_details(self._details())

    # --- the case in the Temporal UI (issue #12) ----------------------------------------------
    #
    # Rendered at every change; text only (no command). Bounded whatever the dispute holds:
    # texts cut, lists capped to their latest entries, the rest one query or API call away.
    # The UI reads them through the metadata query, where workflows/console.py renders them
    # anew (`console_details`): evidence links signed and deadlines measured at reading time.

    def console_details(self, links: Callable[[str, str], str], now: datetime) -> str:
        """The details as the UI reads them: `links(dispute_id, evidence_id)` signs a link to
        each evidence item, `now` is the wall clock. Query-time only (read-only, no command)."""
        return self._details(links, max(now, workflow.now()))

    def _details(
        self, links: Callable[[str, str], str] | None = None, now: datetime | None = None
    ) -> str:
        state, now = self.dispute, now or workflow.now()
        lines = [f"## Dispute over “{one_line(state.campaign_title, 120)}”"]
        stage = f"**Stage:** `{state.stage.value}`"
        if state.mediator_overdue:
            stage += " · ⚠️ **mediator overdue**"
            if state.overdue_since:
                stage += (
                    f" · deadline {rfc3339(state.overdue_since)} — "
                    f"**{relative(state.overdue_since, now)}** (as of {rfc3339(now)})"
                )
        if state.deadline and state.stage not in CLOSED:
            stage += (
                f" · **Deadline:** {rfc3339(state.deadline)} — "
                f"**{relative(state.deadline, now)}** (as of {rfc3339(now)})"
            )
        lines += [
            stage,
            f"**Disputed:** {self._money(state.disputed_amount)} (deliverables "
            f"{', '.join(f'#{n}' for n in state.deliverables[:DETAILS_LIST_CAP])}) · "
            f"**Reason:** {one_line(state.reason, 200)}",
            f"**Brand:** {self._who(state.brand_id)} · **Creator:** {self._who(state.creator_id)}"
            + (
                f" · **Agency** (for the {state.agency_represents}): {self._who(state.agency_id)}"
                if state.agency_id
                else ""
            ),
            f"**Mediator:** {self._who(state.mediator_id) if state.mediator_id else 'unassigned'}",
            "",
            f"### Claim — by the {state.claimant_side}, {self._who(state.claimant)}",
            f"{self._split(state.claim)}, filed {rfc3339(state.filed_at)}",
            f"> {one_line(state.statement, DETAILS_TEXT_CAP)}",
            "",
            f"### Response — {state.respondent_side}, {self._who(state.respondent)}",
            f"> {one_line(state.response, DETAILS_TEXT_CAP)}" if state.response else "none yet",
        ]
        lines += self._work_lines()
        open_offers = [o for o in state.offers if o.status == "open"]
        if open_offers:
            lines += ["", "### Open offers", "| offer | by | to creator | to brand |"]
            lines.append("|---|---|---|---|")
            lines += [
                f"| `{o.id}` | {o.side}, {self._who(o.by)} | "
                f"{self._money(o.split.release_to_creator)} | "
                f"{self._money(o.split.refund_to_brand)} |"
                for o in open_offers[-DETAILS_LIST_CAP:]
            ]
        lines += self._evidence_lines(links)
        if state.evidence_requests:
            lines += ["", "### Evidence requested by the mediator"]
            lines += [
                f"- {self._at(r.get('at'))} from {r.get('from_side') or 'both sides'}: "
                f"{one_line(r.get('note'), 200)}"
                for r in state.evidence_requests[-DETAILS_REQUESTS_CAP:]
            ]
        if state.proposal:
            p = state.proposal
            lines += [
                "",
                f"### Mediator's proposal — {self._who(p.mediator_id)}, {rfc3339(p.at)}",
                f"{self._split(p.split)} · accepted by "
                f"{', '.join(p.accepted_by) or 'nobody yet'} (silence accepts)",
                f"> {one_line(p.rationale, DETAILS_TEXT_CAP) or '(no rationale)'}",
            ]
        if state.ruling:
            r = state.ruling
            lines += [
                "",
                f"### Ruling — {self._who(r.mediator_id)}, {rfc3339(r.at)}",
                self._split(r.split),
                f"> {one_line(r.rationale, DETAILS_TEXT_CAP)}",
            ]
        if state.outcome:
            lines += ["", f"**Outcome ({state.outcome.by}):** {self._split(state.outcome)}"]
        lines += self._next_lines()
        return "\n".join(lines)

    def _money(self, amount: int) -> str:
        return format_money(amount, self.dispute.currency)

    def _split(self, split: Split) -> str:
        return (
            f"{self._money(split.release_to_creator)} to the creator / "
            f"{self._money(split.refund_to_brand)} to the brand"
        )

    def _who(self, party_id: str | None) -> str:
        """A party by name where the API told us it (`filed`), else by id."""
        return party(party_id, self.dispute.context.names if self.dispute.context else {})

    @staticmethod
    def _at(value: Any) -> str:
        return rfc3339(value) if hasattr(value, "tzinfo") else one_line(str(value or ""), 30)

    def _work_lines(self) -> list[str]:
        context = self.dispute.context
        lines = ["", "### Disputed work (latest submissions)"]
        if context is None or not context.submissions:
            return lines + ["not known here: `GET /v1/disputes/{id}/case-file` has it"]
        for sub in context.submissions[:DETAILS_LIST_CAP]:
            title = f"#{sub.index} {one_line(sub.title, 80)}"
            if not sub.url:
                lines.append(f"- {title}: nothing submitted")
                continue
            metrics = " · ".join(
                f"{one_line(k, 30)} {v:,}" for k, v in list(sub.metrics.items())[:8]
            )
            when = f", {rfc3339(sub.submitted_at)}" if sub.submitted_at else ""
            lines.append(
                f"- {title}: {_link(sub.url)}{when}" + (f" · {metrics}" if metrics else "")
            )
        return lines

    def _evidence_lines(self, links: Callable[[str, str], str] | None = None) -> list[str]:
        evidence = self.dispute.evidence
        if not evidence:
            return ["", "### Evidence", "none yet"]
        shown = evidence[-DETAILS_LIST_CAP:]
        lines = [
            "",
            "### Evidence",
            "| item | kind | by | what | open | sha256 |",
            "|---|---|---|---|---|---|",
        ]
        for e in shown:
            what = one_line(e.description, 100) or one_line(e.filename, 60)
            if e.kind == "link" and e.url:
                what += f" {_link(e.url)}"
            # A signed console link (the assigned mediator's, valid EVIDENCE_LINK_TTL), or the
            # API route when the details were rendered without a signer.
            opens = (
                f"[{EVIDENCE_VERB[e.kind]}]({links(self.dispute.id, e.id)})"
                if links
                else f"API `…/evidence/{e.id}`"
            )
            lines.append(
                f"| `{e.id}` | {e.kind} | {self._who(e.submitted_by)} | {what} | {opens} "
                f"| `{e.sha256[:12]}…` |"
            )
        if len(evidence) > len(shown):
            lines.append(f"… and {len(evidence) - len(shown)} earlier items (`state` query)")
        return lines

    def _next_lines(self) -> list[str]:
        state = self.dispute
        if state.stage in CLOSED:
            return ["", "**Closed:** nothing more to send."]
        lines = ["", f"### Next: {NEXT_UPDATE[state.stage]}"]
        mediator_stage = state.stage in (Stage.MEDIATION, Stage.ARBITRATION)
        if state.stage == Stage.AWAITING_ACCEPTANCE and state.mediator_id:
            return lines
        if not mediator_stage and state.stage != Stage.AWAITING_ACCEPTANCE:
            return lines + ["(party actions go through the Parley API, not the UI)"]
        token = {
            "mediator_id": state.mediator_id or "pty_… (your id)",
            "console_token": "… (POST /v1/mediators/me/console-token)",
        }
        claim = {
            "release_to_creator": state.claim.release_to_creator,
            "refund_to_brand": state.claim.refund_to_brand,
        }
        if state.mediator_id is None:
            update, body = "assign_mediator", token
        elif state.stage == Stage.MEDIATION:
            update, body = "propose_settlement", {**token, **claim, "rationale": "…"}
        else:
            update, body = "issue_ruling", {**token, **claim, "rationale": "…"}
        lines += [
            f"**Send an Update** `{update}` with (amounts in minor units, "
            f"{state.disputed_amount} = {self._money(state.disputed_amount)}; a split must add "
            "up to it):",
            "```json",
            json.dumps(body, ensure_ascii=False),
            "```",
        ]
        return lines


def _link(url: str) -> str:
    """A link the UI opens, for http(s) URLs only; anything else shown as code."""
    shown = one_line(url, 80)
    if url.startswith(("https://", "http://")) and not any(c in url for c in " ()<>[]`\n"):
        return f"[{shown}]({url})"
    return f"`{shown}`"
