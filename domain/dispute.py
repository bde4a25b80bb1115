"""Dispute payloads and state (SPEC §4): what the DisputeWorkflow holds and the API returns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from domain.campaign import HISTORY_LIMIT, Parties, Side
from domain.deadlines import Deadline
from domain.limits import MAX_DESCRIPTION_CHARS
from domain.money import Money
from domain.terms import Terms

# What one dispute may hold (issue #11): its validators refuse more, so its state and every
# payload built from it stay far below Temporal's 2 MB limit (README, "Input limits").
MAX_EVIDENCE_ITEMS = 100
MAX_OFFERS = 100
MAX_EVIDENCE_REQUESTS = 20
# Evidence text and quoted messages are stored outside the workflow, by sha256 (the API's
# `evidence_text` table); an item sent with its text inline is refused above this size.
MAX_INLINE_EVIDENCE_TEXT_CHARS = 1_000
MAX_EVIDENCE_URL_CHARS = 2_000
MAX_EVIDENCE_NAME_CHARS = 255  # id, filename, content type, message id
TEXT_KINDS = ("text", "message")  # the kinds whose content the API stores as text


class Stage(StrEnum):
    AWAITING_RESPONSE = "awaiting_response"
    NEGOTIATION = "negotiation"
    MEDIATION = "mediation"
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    ARBITRATION = "arbitration"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


CLOSED = {Stage.RESOLVED, Stage.WITHDRAWN}
# Stages a mediator sees (SPEC §1: "disputes in mediation/arbitration").
MEDIATED = {Stage.MEDIATION, Stage.AWAITING_ACCEPTANCE, Stage.ARBITRATION}

ResolvedBy = Literal["acceptance", "default", "agreement", "mediated_agreement", "ruling"]


class Split(BaseModel):
    """How the disputed amount divides; always sums to it exactly (else 422)."""

    model_config = ConfigDict(extra="forbid")

    release_to_creator: Money
    refund_to_brand: Money

    @property
    def total(self) -> int:
        return self.release_to_creator + self.refund_to_brand


class DisputeFiling(BaseModel):
    """The API body of `POST /v1/campaigns/{id}/disputes`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)
    # Default: every one still holding escrow. Indexes are checked against the campaign.
    deliverables: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        default=None, min_length=1, max_length=200
    )
    claim: Split
    statement: str = Field(min_length=1, max_length=20_000)


class FileDispute(DisputeFiling):
    actor_id: str


class NewDispute(BaseModel):
    """Child-workflow input, built by the campaign when it accepts a filing."""

    id: str
    campaign_id: str
    campaign_title: str
    currency: str
    brand_id: str
    creator_id: str
    agency_id: str | None = None
    agency_represents: Side | None = None
    claimant_id: str
    claimant_side: Side
    reason: str
    statement: str
    deliverables: list[int]
    disputed_amount: int
    claim: Split
    terms: Terms
    # Evidence the filing brings (a takedown dispute the platform files: the post's metric
    # snapshots, issue #15). Metadata only, as every evidence item.
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=1)
    history_limit: int = HISTORY_LIMIT  # continue-as-new, as the campaign's
    carried: DisputeState | None = None
    answered: dict[str, dict[str, Any]] = {}  # as NewCampaign.answered


class Outcome(Split):
    by: ResolvedBy

    @property
    def losing_side(self) -> Side | None:
        """The side that got less than half of the disputed amount; nobody on an even split."""
        if self.release_to_creator == self.refund_to_brand:
            return None
        return "creator" if self.refund_to_brand > self.release_to_creator else "brand"


# The signal a dispute sends its campaign when it ends (the campaign's `dispute_decided`).
DISPUTE_DECIDED = "dispute_decided"


class DisputeResult(BaseModel):
    """What the dispute hands back to its campaign: the split, or None when withdrawn."""

    dispute_id: str
    outcome: Outcome | None = None


class Offer(BaseModel):
    id: str
    by: str
    side: Side
    split: Split
    at: datetime
    status: Literal["open", "accepted", "superseded"] = "open"


class EvidenceItem(BaseModel):
    """Metadata only: files live content-addressed on disk, texts and quoted messages in the
    database by their sha256; the API puts the text back when it reads a dispute."""

    id: str
    kind: Literal["file", "link", "text", "message"]
    submitted_by: str
    at: datetime
    description: str = ""
    sha256: str
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    url: str | None = None
    # Kept, optional, so state recorded before #11 (text inline) still reads; new items send
    # none (at most MAX_INLINE_EVIDENCE_TEXT_CHARS, checked by the workflow's validator).
    text: str | None = None
    message_id: str | None = None

    def refusal(self) -> str | None:
        """Why the workflow refuses to hold this item, if it does: free-form fields capped,
        the text left outside."""
        if self.text is not None and len(self.text) > MAX_INLINE_EVIDENCE_TEXT_CHARS:
            return (
                f"text: at most {MAX_INLINE_EVIDENCE_TEXT_CHARS} characters inline; the API stores "
                "evidence text (POST /v1/disputes/{id}/evidence) and the item carries its sha256"
            )
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            return f"description: at most {MAX_DESCRIPTION_CHARS} characters"
        if self.url is not None and len(self.url) > MAX_EVIDENCE_URL_CHARS:
            return f"url: at most {MAX_EVIDENCE_URL_CHARS} characters"
        names = {
            "id": self.id,
            "submitted_by": self.submitted_by,
            "filename": self.filename,
            "content_type": self.content_type,
            "message_id": self.message_id,
        }
        for name, value in names.items():
            if value is not None and len(value) > MAX_EVIDENCE_NAME_CHARS:
                return f"{name}: at most {MAX_EVIDENCE_NAME_CHARS} characters"
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            return "sha256: 64 lowercase hex digits"
        return None


class Proposal(BaseModel):
    mediator_id: str
    split: Split
    rationale: str = ""
    at: datetime
    accepted_by: list[Side] = Field(default_factory=list)


class Ruling(BaseModel):
    mediator_id: str
    split: Split
    rationale: str
    at: datetime


# What the Temporal UI's details show beside the workflow's own state (issue #12): the
# parties' names and the disputed deliverables' latest submissions, which the workflow does not
# hold. The API sends them, signed, with the `filed` Update; every field is capped.
MAX_CONTEXT_SUBMISSIONS = 20
MAX_CONTEXT_METRICS = 12
PartyName = Annotated[str, Field(max_length=200)]


class SubmissionSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    title: str = Field(default="", max_length=200)
    url: str | None = Field(default=None, max_length=MAX_EVIDENCE_URL_CHARS)
    submitted_at: datetime | None = None
    metrics: dict[Annotated[str, Field(max_length=50)], int | float] = Field(
        default_factory=dict, max_length=MAX_CONTEXT_METRICS
    )


class DisputeContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: dict[Annotated[str, Field(max_length=MAX_EVIDENCE_NAME_CHARS)], PartyName] = Field(
        default_factory=dict, max_length=10
    )
    submissions: list[SubmissionSummary] = Field(
        default_factory=list, max_length=MAX_CONTEXT_SUBMISSIONS
    )


class DisputeState(Parties):
    id: str
    campaign_id: str
    campaign_title: str
    currency: str
    stage: Stage
    claimant: str
    claimant_side: Side
    respondent_side: Side
    reason: str
    statement: str
    response: str | None = None
    deliverables: list[int]
    disputed_amount: int
    claim: Split
    terms: Terms
    filed_at: datetime
    deadline: datetime | None = None
    evidence: list[EvidenceItem] = Field(default_factory=list)
    evidence_requests: list[dict[str, Any]] = Field(default_factory=list)
    offers: list[Offer] = Field(default_factory=list)
    mediator_id: str | None = None
    mediator_overdue: bool = False
    overdue_since: datetime | None = None  # the deadline the mediator let pass
    proposal: Proposal | None = None
    ruling: Ruling | None = None
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    reminders_sent: list[str] = Field(default_factory=list)
    version: int = 0
    context: DisputeContext | None = None  # for the UI's details only (not in the API view)

    @property
    def respondent(self) -> str:
        return self.creator_id if self.respondent_side == "creator" else self.brand_id

    def deadlines(self) -> list[Deadline]:
        """The stage's deadline, if one runs, with who must act before it."""
        if self.deadline is None or self.stage in CLOSED:
            return []
        terms, both = self.terms, ("brand", "creator")
        if self.stage == Stage.AWAITING_RESPONSE:
            step, window, to = "response", terms.response_window, (self.respondent_side,)
        elif self.stage == Stage.NEGOTIATION:
            step, window, to = "negotiation", terms.negotiation_window, both
        elif self.stage == Stage.AWAITING_ACCEPTANCE:
            unanswered = tuple(s for s in both if s not in self.proposal.accepted_by)
            step, window, to = "proposal", terms.proposal_window, unanswered
        else:
            step = self.stage.value  # mediation or arbitration: the mediator acts
            window, to = getattr(terms, f"{step}_window"), ("mediator",)
        return [Deadline(step, self.deadline, window, to)]


# --- actions (Updates); each carries who acts, as the campaign's do ------------------------


class PartyAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor_id: str


class Respond(PartyAction):
    statement: str = Field(min_length=1, max_length=20_000)
    accept_claim: bool = False


class MakeOffer(PartyAction):
    release_to_creator: Money
    refund_to_brand: Money


class AcceptOffer(PartyAction):
    offer_id: str


class AddEvidence(BaseModel):
    """Sent by the API after it stored the file (or for links, text, messages)."""

    model_config = ConfigDict(extra="forbid")

    actor_id: str
    item: EvidenceItem


class MediatorAction(BaseModel):
    """Mediator Updates take the API's JSON plus `mediator_id`, so the Temporal UI can send them."""

    model_config = ConfigDict(extra="forbid")

    mediator_id: str = Field(min_length=1)
    # From the Temporal UI: the token `POST /v1/mediators/me/console-token` issued to this
    # mediator (domain/authority.py). The API signs its Updates instead and leaves it out.
    console_token: str | None = Field(default=None, max_length=200)


class AssignMediator(MediatorAction):
    reassign: bool = False  # admin only (the API checks); replaces an assigned mediator


class RequestEvidence(MediatorAction):
    note: str = Field(min_length=1, max_length=5000)
    from_side: Side | None = None  # None: both


class ProposeSettlement(MediatorAction):
    release_to_creator: Money
    refund_to_brand: Money
    rationale: str = Field(default="", max_length=20_000)


class IssueRuling(MediatorAction):
    release_to_creator: Money
    refund_to_brand: Money
    rationale: str = Field(min_length=1, max_length=20_000)


NewDispute.model_rebuild()
