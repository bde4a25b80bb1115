"""The API's resources (issue #14): one model per resource, each the `response_model` of the
routes that answer it, so the OpenAPI document describes every body a client receives.

Views of the domain's state models are derived from them (`view_of`: the same fields, minus
the workflow's bookkeeping), so a field is declared once; what the API renames for one naming
scheme (`created_at` for when a thing happened, `type` for what kind of event it is, splits
flat as they are posted) is declared here, with the function that maps the stored shape.
Every timestamp is RFC 3339 UTC with an offset (`Z`), also those SQLite hands back naive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from domain import campaign as campaign_domain
from domain import dispute as dispute_domain
from domain import money, proof, terms
from domain.campaign import CampaignStatus, Side
from domain.dispute import ResolvedBy, Split, Stage
from domain.parties import Role


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# An instant, always written with its offset (`Z`).
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class Resource(BaseModel):
    """A response body: every field is present in every answer (`required` in the document,
    nullable where it may be null), so generated clients read them without `Unset` checks."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


def view_of(model: type[BaseModel], name: str, *, exclude: tuple[str, ...] = (), **extra: Any):
    """The domain model's fields (their types, defaults and descriptions), minus `exclude`,
    plus `extra` (`name=(type, default)`), as a Resource named `name`."""
    fields: dict[str, Any] = {
        field: (info.annotation, info)
        for field, info in model.model_fields.items()
        if field not in exclude
    }
    fields.update(extra)
    return create_model(name, __base__=Resource, __doc__=model.__doc__, **fields)


# --- problems ------------------------------------------------------------------------------


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with Parley's machine `code` (SPEC §8)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the problem: https://parley.dev/problems/{code}")
    title: str
    status: int
    code: str = Field(description="machine code, e.g. payment_failed, invalid_state")
    detail: str
    instance: str | None = None
    errors: list[ValidationIssue] | None = Field(
        default=None, description="for validation_error: each field that was refused"
    )


# --- lists ---------------------------------------------------------------------------------


T = TypeVar("T")


class Page(Resource, Generic[T]):
    """A list: one page of `items`; `next_cursor` continues it (null on the last page)."""

    items: list[T]
    next_cursor: str | None


# --- campaigns -----------------------------------------------------------------------------

Terms = view_of(terms.Terms, "Terms")
Escrow = view_of(money.Escrow, "Escrow")
Submission = view_of(campaign_domain.Submission, "Submission")
Cancellation = view_of(campaign_domain.Cancellation, "Cancellation")


class Progress(Resource):
    """Where a tracked deliverable's objective stands (issue #15): the latest figure until its
    window closes at `due_at`, then the figure that counts."""

    achieved: int
    met: bool
    evaluated: bool
    due_at: UtcDatetime


# Proof terms as contracted, each objective with its progress (null until approval).
ObjectiveWithProgress = view_of(
    proof.Objective, "ObjectiveWithProgress", progress=(Progress | None, None)
)
# The workflow's timer bookkeeping (`frozen_from`, `paused_remaining`, `payout_attempt`) stays in.
Deliverable = view_of(
    campaign_domain.Deliverable,
    "Deliverable",
    exclude=("frozen_from", "paused_remaining", "payout_attempt", "submissions", "objectives"),
    submissions=(list[Submission], ...),
    objectives=(list[ObjectiveWithProgress] | None, None),
)
Campaign = view_of(
    campaign_domain.CampaignState,
    "Campaign",
    exclude=(*campaign_domain.INTERNAL_FIELDS, "fund_attempts", "terms", "escrow", "deliverables"),
    status=(CampaignStatus, ...),
    brief=(str, ...),
    terms=(Terms, ...),
    deliverables=(list[Deliverable], ...),
    escrow=(Escrow, ...),
    budget=(int, Field(description="the sum of the deliverables' amounts")),
    reviews_revealed=(bool, ...),
    next_deadline=(datetime | None, ...),
)


class TimelineEntry(Resource):
    """One event of a campaign or of its disputes (`source` says which)."""

    id: int
    type: str = Field(description="what happened, e.g. campaign.funded, dispute.filed")
    created_at: UtcDatetime
    actor: str | None
    source: str = Field(description="the campaign's or the dispute's id")
    data: dict[str, Any]


def timeline_entry(event) -> TimelineEntry:
    return TimelineEntry(
        id=event.id,
        type=event.kind,
        created_at=event.at,
        actor=event.actor,
        source=event.source,
        data=event.data,
    )


# --- disputes ------------------------------------------------------------------------------


class SplitFields(Resource):
    release_to_creator: int
    refund_to_brand: int


class Offer(SplitFields):
    id: str
    by: str = Field(description="the party that made the offer")
    side: Side
    status: Literal["open", "accepted", "superseded"]
    created_at: UtcDatetime


class Proposal(SplitFields):
    mediator_id: str
    rationale: str
    accepted_by: list[Side]
    created_at: UtcDatetime


class Ruling(SplitFields):
    mediator_id: str
    rationale: str
    created_at: UtcDatetime


class Outcome(SplitFields):
    by: ResolvedBy


class EvidenceRequest(Resource):
    note: str
    from_side: Side | None
    created_at: UtcDatetime


Evidence = view_of(
    dispute_domain.EvidenceItem,
    "Evidence",
    exclude=("at",),
    created_at=(UtcDatetime, ...),
)
Claim = view_of(Split, "Claim")


class Dispute(Resource):
    """A dispute (SPEC §4, §8). A mediator not assigned to it sees its queue summary:
    `redacted` true, and what the parties wrote (statement, response, offers, proposal,
    ruling, evidence contents) null or empty."""

    id: str
    campaign_id: str
    campaign_title: str
    currency: str
    stage: Stage
    brand_id: str
    creator_id: str
    agency_id: str | None
    agency_represents: Side | None
    claimant: str = Field(description="the party that filed")
    claimant_side: Side
    respondent: str = Field(description="the party that answers: the other side's brand/creator")
    respondent_side: Side
    reason: str
    statement: str | None
    response: str | None
    deliverables: list[int]
    disputed_amount: int
    claim: Claim
    terms: Terms | None
    created_at: UtcDatetime = Field(description="when it was filed")
    deadline: UtcDatetime | None
    evidence: list[Evidence]
    evidence_requests: list[EvidenceRequest]
    offers: list[Offer]
    mediator_id: str | None
    mediator_overdue: bool
    proposal: Proposal | None
    ruling: Ruling | None
    outcome: Outcome | None
    closed_at: UtcDatetime | None
    redacted: bool = False


class CaseCampaign(Resource):
    id: str
    title: str
    currency: str
    brand_id: str
    creator_id: str
    agency_id: str | None
    contract_hash: str
    terms: Terms


class CaseFileBundle(Resource):
    """Everything a decision rests on (SPEC §4): terms and contract hash, the disputed work,
    the claim and the response, evidence with hashes, quoted messages, offers, proposal,
    ruling, outcome and the dispute's timeline."""

    dispute_id: str
    campaign: CaseCampaign
    deliverables: list[Deliverable]
    claimant: str
    reason: str
    statement: str
    claim: Claim
    disputed_amount: int
    response: str | None
    evidence: list[Evidence]
    messages: list[Evidence] = Field(description="the evidence items quoting messages")
    offers: list[Offer]
    proposal: Proposal | None
    ruling: Ruling | None
    outcome: Outcome | None
    timeline: list[TimelineEntry]


class CaseFile(Resource):
    case_file: CaseFileBundle
    sha256: str = Field(description="sha256 of the canonical JSON of `case_file`")


def _flat(item: dict[str, Any], **renamed: Any) -> dict[str, Any]:
    """An offer, proposal or ruling as posted: the split flat, `at` as `created_at`."""
    out = {k: v for k, v in item.items() if k not in ("split", "at")}
    return {**out, **(item.get("split") or {}), "created_at": item.get("at"), **renamed}


def evidence(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k != "at"}
    return {**out, "created_at": item.get("at") or item.get("created_at")}


def dispute(state: dict[str, Any]) -> dict[str, Any]:
    """The dispute's state or read-model snapshot as the Dispute resource."""
    respondent = state.get("respondent_id") or (
        state["creator_id"] if state["respondent_side"] == "creator" else state["brand_id"]
    )
    proposal, ruling = state.get("proposal"), state.get("ruling")
    return {
        **{k: v for k, v in state.items() if k in Dispute.model_fields},
        "claimant": state.get("claimant") or state.get("claimant_id"),
        "respondent": respondent,
        "created_at": state.get("filed_at"),
        "evidence": [evidence(e) for e in state.get("evidence", [])],
        "evidence_requests": [
            {**r, "created_at": r.get("at")} for r in state.get("evidence_requests", [])
        ],
        "offers": [_flat(o) for o in state.get("offers", [])],
        "proposal": _flat(proposal) if proposal else None,
        "ruling": _flat(ruling) if ruling else None,
    }


def offer_of(state: dict[str, Any], offer_id: str) -> dict[str, Any] | None:
    return next((o for o in dispute(state)["offers"] if o["id"] == offer_id), None)


# --- messages, notifications, reviews, parties, ledger ----------------------------------------


class Message(Resource):
    id: str
    seq: int = Field(description="its place in the thread: the SSE `id:` and list cursor")
    campaign_id: str
    author_id: str
    body: str
    created_at: UtcDatetime


class Delivery(Resource):
    email: str | None
    webhook: str | None


class Notification(Resource):
    id: str
    type: str = Field(description="the event, as in the webhook payload's `type`")
    title: str
    body: str
    campaign_id: str | None
    dispute_id: str | None
    data: dict[str, Any]
    created_at: UtcDatetime
    read_at: UtcDatetime | None
    delivery: Delivery


class Review(Resource):
    id: int
    campaign_id: str
    side: Side = Field(description="the reviewing side")
    reviewer_id: str
    subject_id: str
    rating: int
    comment: str
    created_at: UtcDatetime
    visible: bool


class ReviewPage(Page[Review]):
    revealed: bool
    reviews_close_at: UtcDatetime | None


class Reputation(Resource):
    average_rating: float | None
    reviews: int
    campaigns_completed: int
    disputes_filed: int
    disputes_lost: int


class Party(Resource):
    """What any authenticated caller may see of a party: its profile and reputation."""

    id: str
    name: str
    role: Role
    created_at: UtcDatetime
    reputation: Reputation | None = None


class PartyPrivate(Party):
    """What a party sees of itself."""

    email: str
    webhook_url: str | None
    stripe_account: str | None
    deactivated_at: UtcDatetime | None = Field(
        None, description="set while the admin has deactivated the party (its keys answer 401)"
    )


class PartyCreated(PartyPrivate):
    """Shown once: the API key, and the webhook secret when a `webhook_url` was given."""

    api_key: str
    webhook_secret: str | None = None


class Status(Resource):
    status: Literal["ok"]


class Ready(Resource):
    status: Literal["ready"]
    checks: dict[str, str]


class WebhookReceipt(Resource):
    received: bool
    duplicate: bool = False
    handled: str | None = None


# --- request bodies derived from the domain's payloads -------------------------------------------


def body_of(model: type[BaseModel], name: str, *, without: tuple[str, ...]) -> type[BaseModel]:
    """The API body of an action: the domain payload's fields minus those the API fills
    (`actor_id` from the caller's key, `index` from the path), declared once, in domain/."""
    fields: dict[str, Any] = {
        field: (info.annotation, info)
        for field, info in model.model_fields.items()
        if field not in without
    }
    return create_model(
        name, __config__=ConfigDict(extra="forbid"), __doc__=model.__doc__, **fields
    )


def partial_of(model: type[BaseModel], name: str, *, only: tuple[str, ...]) -> type[BaseModel]:
    """A PATCH body: `only` these fields of `model`, each optional (absent: unchanged), with
    the same constraints."""
    fields: dict[str, Any] = {}
    for field in only:
        info = model.model_fields[field]
        fields[field] = (info.annotation | None, FieldInfo.merge_field_infos(info, default=None))
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


class PartyList(Page[PartyPrivate]):
    pass


class PartyUpdated(PartyPrivate):
    """The party after the change; `webhook_secret` is shown once, when a first
    `webhook_url` made one (else null)."""

    webhook_secret: str | None = None


class ApiKey(Resource):
    """Shown once: the new API key. The replaced one keeps working until
    `previous_key_expires_at` (null: it stopped at once)."""

    api_key: str
    previous_key_expires_at: UtcDatetime | None


class WebhookSecret(Resource):
    """Shown once: sign-checks of webhooks use it from the next delivery on."""

    webhook_secret: str
