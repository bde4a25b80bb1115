"""Campaign payloads and state (SPEC §3): what the workflow holds and the API returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.contract import contract_hash, rfc3339
from domain.currencies import CURRENCIES
from domain.deadlines import Deadline, earliest
from domain.errors import Refusal, refuse
from domain.limits import MAX_NOTES_CHARS, Metrics
from domain.money import MAX_AMOUNT, Escrow, Money
from domain.proof import (
    DEFAULT_CURE_WINDOW,
    MAX_OBJECTIVES,
    Objective,
    PayoutRule,
    ProofTerms,
    ProofTracking,
)
from domain.terms import Terms

# A run continues as new at this many history events, far below Temporal's 50,000-event
# and 50 MB limits (a normal two-deliverable campaign is about 130 events).
HISTORY_LIMIT = 5_000
# The most recent Update answers a run hands to the next (see workflows/repeats.py): a client
# retries within minutes, far fewer Updates than a run holds.
ANSWERS_CARRIED = 200


class CampaignStatus(StrEnum):
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    AWAITING_FUNDING = "awaiting_funding"
    # The charge was accepted but is still settling (a PaymentIntent `processing`): not funded
    # until the rail confirms it (SPEC §9).
    FUNDING_PENDING = "funding_pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    # Overlays on an active campaign, reported instead of `active` (SPEC §3).
    DISPUTED = "disputed"
    FROZEN = "frozen"


ENDED = {
    CampaignStatus.COMPLETED,
    CampaignStatus.DECLINED,
    CampaignStatus.EXPIRED,
    CampaignStatus.CANCELLED,
}


class DeliverableStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    RELEASED = "released"
    OVERDUE = "overdue"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    SETTLED = "settled"
    CHARGED_BACK = "charged_back"  # its money went back to the brand by a lost chargeback


FINAL = {
    DeliverableStatus.RELEASED,
    DeliverableStatus.REFUNDED,
    DeliverableStatus.SETTLED,
    DeliverableStatus.CHARGED_BACK,
}
# Deliverables whose money is still held and not promised to the creator.
UNAPPROVED = {
    DeliverableStatus.PENDING,
    DeliverableStatus.SUBMITTED,
    DeliverableStatus.CHANGES_REQUESTED,
    DeliverableStatus.OVERDUE,
}

Side = Literal["brand", "creator"]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone (RFC 3339)")
    try:
        return value.astimezone(UTC) if value else None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:02 is before year 1 in UTC
        raise ValueError("timestamp out of range") from None


# --- requests -----------------------------------------------------------------------------


class ProofFields(BaseModel):
    """A deliverable's optional proof of performance (SPEC §9, domain/proof.py), flat as the
    API takes it. All absent: approval alone releases, as before."""

    live_for: timedelta | None = None
    objectives: list[Objective] | None = Field(default=None, max_length=MAX_OBJECTIVES)
    payout_rule: PayoutRule | None = None
    cure_window: timedelta | None = None

    @property
    def proof(self) -> ProofTerms | None:
        if self.live_for is None and self.objectives is None and self.payout_rule is None:
            return None
        return ProofTerms(
            live_for=self.live_for,
            objectives=self.objectives or [],
            payout_rule=self.payout_rule or PayoutRule(),
            cure_window=DEFAULT_CURE_WINDOW if self.cure_window is None else self.cure_window,
        )

    def proof_fields(self) -> dict[str, Any]:
        """The proof terms as pinned (cure window filled in), for the state."""
        proof = self.proof
        if proof is None:
            return {}
        return {
            "live_for": proof.live_for,
            "objectives": proof.objectives,
            "payout_rule": proof.payout_rule,
            "cure_window": proof.cure_window,
        }


class DeliverableSpec(ProofFields):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    amount: Money = Field(gt=0)
    # An RFC 3339 string (never a number of seconds); the API also requires it in the future.
    due_at: datetime | None = None

    _due_aware = field_validator("due_at")(classmethod(lambda cls, v: _aware(v)))

    @field_validator("due_at", mode="before")
    @classmethod
    def _due_is_text(cls, value: Any) -> Any:
        # Pydantic would read 12345 as seconds since 1970: a due date is RFC 3339 text.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("due_at must be an RFC 3339 timestamp string")
        return value

    @model_validator(mode="after")
    def _proof_is_whole(self) -> DeliverableSpec:
        if self.cure_window is not None and self.live_for is None:
            raise ValueError("cure_window needs live_for (a post that must stay live)")
        proof = self.proof  # validates the terms together (ProofTerms' own checks)
        if proof is not None and not proof.tracked:
            raise ValueError("payout_rule needs objectives or live_for")
        return self

    def contract_view(self) -> dict[str, Any]:
        view = {
            "title": self.title,
            "description": self.description,
            "amount": self.amount,
            "due_at": rfc3339(self.due_at) if self.due_at else None,
        }
        # Only when present, so every contract without proof terms hashes as before.
        if (proof := self.proof) is not None:
            view["proof"] = proof.contract_view()
        return view


class CampaignCreate(BaseModel):
    """The API body of `POST /v1/campaigns` (terms are merged with config defaults)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    brief: str = Field(default="", max_length=20_000)
    creator_id: str = Field(min_length=1, max_length=40)
    brand_id: str | None = Field(default=None, max_length=40)  # required when an agency creates
    agency_id: str | None = Field(default=None, max_length=40)
    agency_represents: Side | None = None
    currency: str = Field(pattern=r"^[a-z]{3}$")

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f"{value} is not an ISO 4217 currency Stripe settles")
        return value

    deliverables: list[DeliverableSpec] = Field(min_length=1, max_length=200)
    terms: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _agency_named_with_side(self) -> CampaignCreate:
        if (self.agency_id is None) != (self.agency_represents is None):
            raise ValueError("agency_id and agency_represents go together")
        if sum(d.amount for d in self.deliverables) > MAX_AMOUNT:
            raise ValueError("budget too large")
        return self


class NewCampaign(BaseModel):
    """Workflow input: the request with ids resolved and terms pinned."""

    id: str
    brand_id: str
    creator_id: str
    agency_id: str | None = None
    agency_represents: Side | None = None
    title: str
    brief: str
    currency: str
    deliverables: list[DeliverableSpec]
    terms: Terms
    created_by: str
    # The parties' names by id, for the Temporal UI's details only (issue #12): no command
    # depends on them. Runs started before carry none and show ids.
    names: dict[str, str] = Field(default_factory=dict, max_length=3)
    # How often a tracked post is looked at (config, pinned at creation; not in the contract).
    proof_poll_every: timedelta = timedelta(hours=1)
    # Continue-as-new: the events after which a run hands over (Temporal may suggest it
    # sooner), and the state the next run starts from.
    history_limit: int = HISTORY_LIMIT
    carried: CampaignState | None = None
    # Update id -> the answer it got, for Updates retried into the next run.
    answered: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _commission_only_for_creator_agency(self) -> NewCampaign:
        if self.terms.agency_commission_bps and self.agency_represents != "creator":
            raise ValueError("agency_commission_bps needs an agency representing the creator")
        return self


class Action(BaseModel):
    """Every Update carries who acts; the API fills it from the caller's key."""

    model_config = ConfigDict(extra="forbid")

    actor_id: str


class AcceptCampaign(Action):
    contract_hash: str = Field(min_length=64, max_length=64)


class FundRequest(Action):
    payment_method: str = Field(default="pm_card_visa", min_length=1, max_length=255)


class DeliverableAction(Action):
    index: int = Field(ge=0)


class SubmitDeliverable(DeliverableAction):
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    notes: str = Field(default="", max_length=MAX_NOTES_CHARS)
    metrics: Metrics = Field(default_factory=dict)


class RequestChanges(DeliverableAction):
    reason: str = Field(min_length=1, max_length=5000)


class SubmitReview(Action):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=5000)


class FundingSettled(BaseModel):
    """The rail's word on a charge that was settling or went unanswered (Stripe's
    `payment_intent.succeeded` / `payment_intent.payment_failed`)."""

    reference: str = Field(min_length=1, max_length=255)
    succeeded: bool
    reason: str = Field(default="", max_length=500)


class RetryPayouts(BaseModel):
    """Admin, or the rail saying an account can now be paid: blocked payouts go again."""

    reason: str = Field(default="", max_length=500)


CardDisputeStatus = Literal["open", "won", "lost"]
MAX_CARD_DISPUTES = 20  # per campaign: a charge has very few


class CardDispute(BaseModel):
    """The card network's dispute on the funding charge (Stripe `charge.dispute.*`)."""

    dispute_id: str = Field(min_length=1, max_length=255)
    status: CardDisputeStatus
    amount: int = Field(ge=0, le=10**12)
    reason: str = Field(default="", max_length=500)


class SetFrozen(BaseModel):
    """Admin or payment-rail freeze (charge dispute on the funding charge)."""

    frozen: bool
    reason: str = Field(default="", max_length=500)


# --- state --------------------------------------------------------------------------------


class Submission(BaseModel):
    """The latest submission of a deliverable, as the workflow keeps it: its URL and the
    sha256 of `{url, notes, metrics}`. The notes and metrics themselves live on the campaign's
    timeline in the database (the API shows them from there), never in workflow state or
    history. Submissions recorded before that change still carry them here."""

    url: str
    notes: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    submitted_at: datetime
    change_request: str | None = None
    sha256: str | None = None
    number: int | None = None  # 1 for the first submission of the deliverable, and so on


class Deliverable(ProofFields):
    index: int
    title: str
    description: str = ""
    amount: int
    status: DeliverableStatus = DeliverableStatus.PENDING
    due_at: datetime | None = None
    review_due_at: datetime | None = None
    approved_at: datetime | None = None
    approved_by: Literal["brand", "auto"] | None = None
    clears_at: datetime | None = None
    revisions: int = 0
    submissions: list[Submission] = Field(default_factory=list)
    # Set while a dispute freezes it: its status before, and the time its running timer
    # (due, review or clearing) had left, to resume with (SPEC §4).
    frozen_from: DeliverableStatus | None = None
    paused_remaining: timedelta | None = None
    # Set when the rail refused its release for good (no payout account, payouts disabled):
    # the money stays held, nothing retries until `retry_payouts`, which bumps the attempt.
    payout_blocked: str | None = None
    payout_attempt: int = 1
    # Proof of performance once approved (workflow patch `proof-of-performance`).
    tracking: ProofTracking | None = None


class Review(BaseModel):
    """One side's review of the other, hidden from it until both are in or the period ends."""

    side: Side  # the reviewing side: one review each
    by: str  # the brand, creator, or the agency writing for its side
    subject_id: str  # the reviewed side's brand or creator
    subject_agency_id: str | None = None  # and its agency, whose reputation it also counts for
    rating: int
    comment: str
    at: datetime


class Parties(BaseModel):
    """Who is on a campaign (and on its disputes), and which side each one acts for."""

    brand_id: str
    creator_id: str
    agency_id: str | None = None
    agency_represents: Side | None = None

    def side_of(self, party_id: str) -> Side | None:
        if party_id == self.brand_id:
            return "brand"
        if party_id == self.creator_id:
            return "creator"
        if self.agency_id and party_id == self.agency_id:
            return self.agency_represents
        return None

    def parties(self) -> list[str]:
        return [p for p in (self.brand_id, self.creator_id, self.agency_id) if p]

    def members(self, *sides: str) -> list[str]:
        """Who acts for these sides: the brand or creator, and the agency representing it."""
        return [p for p in self.parties() if self.side_of(p) in sides]

    def agency_of(self, side: Side) -> str | None:
        return self.agency_id if self.agency_represents == side else None


class PayoutLeg(BaseModel):
    """A release to the creator side or a refund to the brand, as one rail call. Owed when
    the rail refused it for good: decided, not yet moved, its money still held, until
    `retry_payouts` sends it again under its next key (`attempt`)."""

    kind: Literal["release", "refund"]
    key: str  # the ledger key before its attempt suffix
    amount: int
    attempt: int = 1
    reason: str = ""  # the rail's refusal, once owed


class Cancellation(BaseModel):
    requested_by: Side
    requested_at: datetime
    confirm_by: datetime


# Not part of the campaign resource: the workflow's bookkeeping, or shown in another form.
INTERNAL_FIELDS = (
    "phase",
    "version",
    "brief",
    "reviews",
    "reminders_sent",
    "disputes_filed",
    "payout_retries",
)


class CampaignState(Parties):
    id: str
    phase: CampaignStatus  # lifecycle; `status` adds the disputed/frozen overlays
    title: str
    brief: str
    currency: str
    contract_hash: str
    terms: Terms
    deliverables: list[Deliverable]
    escrow: Escrow = Field(default_factory=Escrow)
    created_at: datetime
    accept_by: datetime | None = None
    fund_by: datetime | None = None
    funded_at: datetime | None = None
    fund_attempts: int = 0
    # The charge in flight: settling (`funding_pending`), or one whose outcome was not seen
    # (the rail did not answer in time). Its key and, once known, the rail's reference.
    funding_key: str | None = None
    funding_reference: str | None = None
    ended_at: datetime | None = None
    reviews_close_at: datetime | None = None
    reviews_closed: bool = False
    reviews: list[Review] = Field(default_factory=list)
    reminders_sent: list[str] = Field(default_factory=list)
    cancellation: Cancellation | None = None
    dispute_id: str | None = None
    disputes_filed: int = 0
    frozen: bool = False  # some hold is on: the admin's or a card dispute's
    frozen_reason: str | None = None
    # Each hold by its source ("admin", "card:dp_…"), so lifting one leaves the others; and
    # what each card dispute on the funding charge last said (out-of-order events, SPEC §9).
    holds: dict[str, str] = Field(default_factory=dict)
    card_disputes: dict[str, str] = Field(default_factory=dict)
    # Bumped by `retry_payouts`; a refused refund or settlement leg waits for it (SPEC §2).
    payout_retries: int = 0
    parked_payout: str | None = None  # what such a leg is and why the rail refused it
    # Refused refund and settlement legs (runs that record the `owed-payouts` marker): owed,
    # without holding the campaign. At most one per deliverable and two per dispute.
    owed_payouts: list[PayoutLeg] = Field(default_factory=list)
    version: int = 0

    @property
    def status(self) -> CampaignStatus:
        if self.frozen:
            return CampaignStatus.FROZEN
        if self.dispute_id:
            return CampaignStatus.DISPUTED
        return self.phase

    @property
    def budget(self) -> int:
        return sum(d.amount for d in self.deliverables)

    def deadlines(self) -> list[Deadline]:
        """The deadlines running now, each with the side that must act before it."""
        terms, running = self.terms, []
        if self.phase == CampaignStatus.AWAITING_ACCEPTANCE:
            running.append(
                Deadline("acceptance", self.accept_by, terms.acceptance_window, ("creator",))
            )
        elif self.phase == CampaignStatus.AWAITING_FUNDING:
            running.append(Deadline("funding", self.fund_by, terms.funding_window, ("brand",)))
        elif self.phase in (CampaignStatus.ACTIVE, CampaignStatus.CANCELLED):
            if self.cancellation and not self.frozen:
                other = "creator" if self.cancellation.requested_by == "brand" else "brand"
                running.append(
                    Deadline(
                        "cancellation",
                        self.cancellation.confirm_by,
                        terms.cancellation_window,
                        (other,),
                    )
                )
            for d in self.deliverables:
                if d.paused_remaining is not None:
                    continue  # paused by a dispute or a freeze: no deadline runs
                if d.status == DeliverableStatus.SUBMITTED:
                    running.append(
                        Deadline(
                            "review", d.review_due_at, terms.review_window, ("brand",), d.index
                        )
                    )
                elif (
                    d.status == DeliverableStatus.APPROVED
                    and not self.frozen
                    and not d.payout_blocked
                ):
                    # Nobody has to act before money clears: no reminder. Under proof
                    # terms the release waits for the proof (or a takedown's cure window).
                    if d.tracking is not None:
                        at = d.tracking.deadline(d.clears_at)
                        running.append(Deadline("proof", at, terms.clearing_period, (), d.index))
                    else:
                        running.append(
                            Deadline("clearing", d.clears_at, terms.clearing_period, (), d.index)
                        )
                elif (
                    d.due_at
                    and self.phase == CampaignStatus.ACTIVE
                    and d.status in (DeliverableStatus.PENDING, DeliverableStatus.CHANGES_REQUESTED)
                ):
                    window = d.due_at - (self.funded_at or self.created_at)
                    running.append(Deadline("delivery", d.due_at, window, ("creator",), d.index))
        elif self.phase == CampaignStatus.COMPLETED and not self.reviews_closed:
            unreviewed = tuple(s for s in ("brand", "creator") if not self.review_by(s))
            running.append(
                Deadline("reviews", self.reviews_close_at, terms.review_period, unreviewed)
            )
        return running

    def invariant_violations(self) -> list[str]:
        """What must never be true after a change: a ledger that does not add up, or money
        held where nothing will ever move it (a stranded state)."""
        problems, escrow = [], self.escrow
        if not escrow.is_exact:
            problems.append(f"escrow identity broken: {escrow.model_dump()}")
        owed = sum(d.amount for d in self.deliverables if d.status not in FINAL)
        owed += sum(leg.amount for leg in self.owed_payouts)
        if escrow.funded and escrow.held != owed:
            problems.append(
                f"held {escrow.held} but open deliverables and owed payouts hold {owed}"
            )
        if not escrow.funded and escrow.held:
            problems.append(f"held {escrow.held} without funding")
        return problems

    def stranded(self) -> list[str]:
        """Deliverables holding money in a phase where no step will move it; checked once a
        whole step (an Update, a fire pass, a dispute's end) is through."""
        if not self.escrow.funded:
            return []
        if self.phase in (
            CampaignStatus.COMPLETED,
            CampaignStatus.DECLINED,
            CampaignStatus.EXPIRED,
        ):
            stuck = [d for d in self.deliverables if d.status not in FINAL]
        elif self.phase == CampaignStatus.CANCELLED:
            stuck = [d for d in self.deliverables if d.status in UNAPPROVED]
        else:
            return []
        return [
            f"deliverable {d.index} is {d.status.value} in a {self.phase.value} campaign"
            for d in stuck
        ]

    def next_deadline(self) -> datetime | None:
        return earliest(self.deadlines())

    def review_by(self, side: str) -> Review | None:
        return next((r for r in self.reviews if r.side == side), None)

    @property
    def reviews_visible(self) -> bool:
        """Double-blind: shown once both sides reviewed or the period closed, and held back
        while a dispute or a chargeback is open."""
        held = self.frozen or self.dispute_id is not None
        return (len(self.reviews) == 2 or self.reviews_closed) and not held

    def public(self) -> dict[str, Any]:
        """The campaign resource of SPEC §8."""
        data = self.model_dump(
            mode="json",
            exclude={
                **dict.fromkeys(INTERNAL_FIELDS, True),
                "deliverables": {"__all__": {"payout_attempt"}},
            },
        )
        data["brief"] = self.brief
        for view, item in zip(data["deliverables"], self.deliverables, strict=True):
            _with_progress(view, item)
        data["reviews_revealed"] = self.reviews_visible
        data["status"] = self.status.value
        data["budget"] = self.budget
        deadline = self.next_deadline()
        data["next_deadline"] = rfc3339(deadline) if deadline else None
        return data

    # --- rules shared by validators and handlers ---

    def require_side(self, actor_id: str, side: Side) -> None:
        if self.side_of(actor_id) != side:
            raise refuse(Refusal.FORBIDDEN, f"only the {side} side may do this")

    def require_either_side(self, actor_id: str) -> Side:
        side = self.side_of(actor_id)
        if side is None:
            raise refuse(Refusal.FORBIDDEN, "only the campaign's parties may do this")
        return side

    def require_phase(self, *phases: CampaignStatus) -> None:
        if self.phase not in phases:
            allowed = " or ".join(p.value for p in phases)
            raise refuse(Refusal.INVALID_STATE, f"campaign is {self.phase.value}, not {allowed}")

    def require_not_frozen(self) -> None:
        if self.frozen:
            raise refuse(
                Refusal.INVALID_STATE, "campaign is frozen: the funding charge is disputed"
            )

    def deliverable(self, index: int, *statuses: DeliverableStatus) -> Deliverable:
        if not 0 <= index < len(self.deliverables):
            raise refuse(Refusal.NOT_FOUND, f"no deliverable {index}")
        item = self.deliverables[index]
        if statuses and item.status not in statuses:
            allowed = " or ".join(s.value for s in statuses)
            raise refuse(
                Refusal.INVALID_STATE, f"deliverable {index} is {item.status.value}, not {allowed}"
            )
        return item


def open_campaign(new: NewCampaign, now: datetime) -> CampaignState:
    deliverables = [
        Deliverable(
            index=i,
            title=d.title,
            description=d.description,
            amount=d.amount,
            due_at=d.due_at,
            **d.proof_fields(),
        )
        for i, d in enumerate(new.deliverables)
    ]
    return CampaignState(
        id=new.id,
        phase=CampaignStatus.AWAITING_ACCEPTANCE,
        title=new.title,
        brief=new.brief,
        brand_id=new.brand_id,
        creator_id=new.creator_id,
        agency_id=new.agency_id,
        agency_represents=new.agency_represents,
        currency=new.currency,
        contract_hash=contract_hash(new.terms, [d.contract_view() for d in new.deliverables]),
        terms=new.terms,
        deliverables=deliverables,
        created_at=now,
        accept_by=now + new.terms.acceptance_window,
    )


def _with_progress(view: dict[str, Any], item: Deliverable) -> None:
    """Each objective of a tracked deliverable shows its progress (SPEC §9:
    `objectives[].progress`)."""
    progress = {p.metric: p for p in item.tracking.progress} if item.tracking else {}
    for objective in view.get("objectives") or []:
        found = progress.get(objective["metric"])
        objective["progress"] = (
            {
                "achieved": found.achieved,
                "met": found.met,
                "evaluated": found.evaluated,
                "due_at": rfc3339(found.due_at),
            }
            if found
            else None
        )


# Deliverables a dispute may cover: their money is still held (SPEC §4).
DISPUTABLE = UNAPPROVED | {DeliverableStatus.APPROVED}


def timer_field(status: DeliverableStatus) -> str | None:
    """Which deadline runs for a deliverable in this status (paused by a dispute)."""
    return {
        DeliverableStatus.PENDING: "due_at",
        DeliverableStatus.CHANGES_REQUESTED: "due_at",
        DeliverableStatus.SUBMITTED: "review_due_at",
        DeliverableStatus.APPROVED: "clears_at",
    }.get(status)


NewCampaign.model_rebuild()
