"""Campaigns (SPEC §3, §8): the API starts the workflow and sends it Updates."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import select
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from api.auth import AdminPrincipal, CurrentParty, CurrentPrincipal, Principal, bearer_token
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.message_bus import TIMELINE, event_stream, resume_point
from api.openapi import EVENT_STREAM, problems
from api.pagination import DEFAULT_LIMIT, Limit, decode_cursor, newest_snapshots, page
from api.resources import Campaign, Page, TimelineEntry, body_of, timeline_entry
from api.routes.grants import agency_authorised
from api.temporal import send_update
from api.views import campaign_view
from db.models import CampaignRecord, DisputeRecord, Party, TimelineEvent, as_utc, involving
from domain.campaign import (
    AcceptCampaign,
    Action,
    CampaignCreate,
    CampaignStatus,
    DeliverableAction,
    DeliverableSpec,
    FundRequest,
    NewCampaign,
    RequestChanges,
    RetryPayouts,
    SetFrozen,
    SubmitDeliverable,
)
from domain.parties import Role
from domain.terms import Terms
from workflows.campaign import CampaignWorkflow

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


def workflow_id(campaign_id: str) -> str:
    return f"campaign-{campaign_id}"


def can_see(principal: Principal, record: CampaignRecord) -> bool:
    return principal.is_admin or principal.id in (
        record.brand_id,
        record.creator_id,
        record.agency_id,
    )


async def visible_campaign(
    campaign_id: str, principal: CurrentPrincipal, session: SessionDep
) -> CampaignRecord:
    """The campaign, if the caller is on it; otherwise 404 (never another party's data)."""
    record = await session.get(CampaignRecord, campaign_id)
    if record is None or not can_see(principal, record):
        raise ProblemError(404, "not_found", "No such campaign")
    return record


VisibleCampaign = Annotated[CampaignRecord, Depends(visible_campaign)]


async def case_campaign(
    campaign_id: str, principal: CurrentPrincipal, session: SessionDep
) -> CampaignRecord:
    """The campaign for its parties, and for the mediator assigned to one of its disputes, who
    reads the posted work, the timeline and the thread to decide the case (SPEC §1, §8)."""
    record = await session.get(CampaignRecord, campaign_id)
    if record is not None:
        if can_see(principal, record):
            return record
        assigned = await session.exec(
            select(DisputeRecord.id).where(
                DisputeRecord.campaign_id == campaign_id, DisputeRecord.mediator_id == principal.id
            )
        )
        if principal.id and assigned.first():
            return record
    raise ProblemError(404, "not_found", "No such campaign")


CaseCampaign = Annotated[CampaignRecord, Depends(case_campaign)]
Index = Annotated[int, Path(ge=0, le=1000, description="the deliverable's index, from 0")]


def _validation_problem(err: ValidationError, prefix: str) -> ProblemError:
    errors = [
        {"loc": [prefix, *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
        for e in err.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
    return ProblemError(422, "validation_error", detail, errors=errors)


async def _require_party(session, party_id: str, role: Role, field: str) -> None:
    party = await session.get(Party, party_id)
    if party is None or party.role != role:
        raise ProblemError(422, "validation_error", f"{field}: no {role.value} with id {party_id}")
    if party.deactivated_at is not None:
        raise ProblemError(422, "validation_error", f"{field}: {party_id} is deactivated")


async def _party_names(session, *party_ids: str | None) -> dict[str, str]:
    """The parties' names for the Temporal UI's details (issue #12; display only)."""
    parties = [await session.get(Party, p) for p in party_ids if p]
    return {party.id: party.name for party in parties if party is not None}


class CampaignPage(Page[Campaign]):
    pass


class TimelinePage(Page[TimelineEntry]):
    pass


@router.post("", status_code=201, response_model=Campaign, name="create")
async def create_campaign(
    body: CampaignCreate,
    principal: CurrentParty,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    if principal.role == Role.BRAND:
        if body.brand_id not in (None, principal.id):
            raise ProblemError(403, "forbidden", "a brand creates campaigns for itself")
        brand_id = principal.id
    elif principal.role == Role.AGENCY:
        if body.agency_id != principal.id or body.agency_represents != "brand":
            raise ProblemError(
                403, "forbidden", "an agency creates campaigns only for a brand it represents"
            )
        if body.brand_id is None:
            raise ProblemError(422, "validation_error", "brand_id: required when an agency creates")
        if not await agency_authorised(session, body.brand_id, principal.id):
            raise ProblemError(403, "forbidden", "the brand has not authorised this agency")
        brand_id = body.brand_id
    else:
        raise ProblemError(403, "forbidden", "only a brand or its agency creates campaigns")
    now = datetime.now(UTC)
    for index, deliverable in enumerate(body.deliverables):
        if deliverable.due_at is not None and deliverable.due_at <= now:
            raise ProblemError(
                422, "validation_error", f"deliverables.{index}.due_at: must be in the future"
            )
    await _require_party(session, brand_id, Role.BRAND, "brand_id")
    await _require_party(session, body.creator_id, Role.CREATOR, "creator_id")
    if body.agency_id:
        await _require_party(session, body.agency_id, Role.AGENCY, "agency_id")
        if body.agency_represents == "creator" and not await agency_authorised(
            session, body.creator_id, body.agency_id
        ):
            raise ProblemError(403, "forbidden", "the creator has not authorised this agency")
    # SPEC §9 puts `cure_window` among the terms; it is pinned on each deliverable that must
    # stay live (domain/proof.py), so contracts without proof terms hash as before.
    given = {**settings.default_terms, **body.terms}
    cure_window = given.pop("cure_window", None)
    try:
        deliverables = [
            DeliverableSpec.model_validate(
                {**d.model_dump(), "cure_window": d.cure_window or cure_window}
            )
            if cure_window and d.live_for
            else d
            for d in body.deliverables
        ]
    except ValidationError as err:
        raise _validation_problem(err, "terms.cure_window") from None
    try:
        terms = Terms.model_validate(given)
    except ValidationError as err:
        raise _validation_problem(err, "terms") from None
    try:
        new = NewCampaign(
            id=_campaign_id(request),
            brand_id=brand_id,
            creator_id=body.creator_id,
            agency_id=body.agency_id,
            agency_represents=body.agency_represents,
            title=body.title,
            brief=body.brief,
            currency=body.currency,
            deliverables=deliverables,
            terms=terms,
            created_by=principal.id,
            proof_poll_every=timedelta(seconds=settings.metrics_poll_seconds),
            names=await _party_names(session, brand_id, body.creator_id, body.agency_id),
        )
    except ValidationError as err:
        raise _validation_problem(err, "body") from None
    start = WithStartWorkflowOperation(
        CampaignWorkflow.run,
        new,
        id=workflow_id(new.id),
        task_queue=settings.task_queue,
        # A retried create (same Idempotency-Key → same id) joins the first one.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Campaign “{new.title}”: {sum(d.amount for d in new.deliverables)} "
        f"{new.currency} · brand {brand_id} · creator {new.creator_id}",
    )
    await temporal.execute_update_with_start_workflow(
        CampaignWorkflow.created, start_workflow_operation=start, id="created", result_type=dict
    )
    response.headers["Location"] = f"/v1/campaigns/{new.id}"
    return await campaign_view(request, temporal, new.id)


def _campaign_id(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if not key:
        return "cmp_" + secrets.token_hex(8)
    caller = bearer_token(request) or ""
    return "cmp_" + hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()[:16]


@router.get("", response_model=CampaignPage, name="list")
async def list_campaigns(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: CampaignStatus | None = None,
    role: Annotated[
        Literal["brand", "creator", "agency"] | None,
        Query(description="only campaigns the caller is on as this role"),
    ] = None,
    created_from: Annotated[datetime | None, Query(description="created at or after")] = None,
    created_before: Annotated[datetime | None, Query(description="created before")] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The caller's campaigns, newest first, from the read model."""
    query = select(CampaignRecord)
    if not principal.is_admin:
        query = query.where(involving(CampaignRecord, principal.id))
    if status:
        query = query.where(CampaignRecord.status == status.value)
    if role:
        column = {"brand": CampaignRecord.brand_id, "creator": CampaignRecord.creator_id}.get(
            role, CampaignRecord.agency_id
        )
        query = query.where(column == (principal.id or ""))
    if created_from:
        query = query.where(CampaignRecord.created_at >= as_utc(created_from))
    if created_before:
        query = query.where(CampaignRecord.created_at < as_utc(created_before))
    return await newest_snapshots(session, query, CampaignRecord, cursor, limit)


@router.get("/{campaign_id}", response_model=Campaign, name="get")
async def get_campaign(record: CaseCampaign) -> dict[str, Any]:
    """The read model: the workflow writes it before any of its steps completes, so it is as
    fresh as the workflow's own state, and it holds what the workflow keeps outside itself."""
    return record.snapshot


@router.get("/{campaign_id}/timeline", response_model=TimelinePage, name="timeline")
async def get_timeline(
    record: CaseCampaign,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    query = select(TimelineEvent).where(TimelineEvent.campaign_id == record.id)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(TimelineEvent.id > position[0])
    rows = (await session.exec(query.order_by(TimelineEvent.id).limit(limit + 1))).all()
    return page(rows, limit, lambda e: [e.id], timeline_entry)


@router.get(
    "/{campaign_id}/events",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
    name="events",
)
async def stream_events(
    record: CaseCampaign,
    request: Request,
    session: SessionDep,
    after: Annotated[
        int | None, Query(ge=0, description="replay timeline entries after this id")
    ] = None,
) -> StreamingResponse:
    """`text/event-stream` of the campaign's new timeline entries (its state changes and its
    disputes'), as `event: timeline` with a `TimelineEntry` as data; `id:` is the entry's id
    (`Last-Event-ID` or `?after=` resumes; by default it starts from now). Same readers as
    the timeline; delivered across API processes (api/message_bus.py)."""
    after = resume_point(request, after)
    return await event_stream(request, session, TIMELINE, record.id, after, _timeline_event)


def _timeline_event(event: TimelineEvent) -> tuple[str, dict[str, Any]]:
    return "timeline", timeline_entry(event).model_dump(mode="json")


# --- actions: each one Update of the campaign workflow ------------------------------------


# The bodies are the domain's payloads without what the API fills in (who acts, which one).
ContractAcceptance = body_of(AcceptCampaign, "ContractAcceptance", without=("actor_id",))
Funding = body_of(FundRequest, "Funding", without=("actor_id",))
Work = body_of(SubmitDeliverable, "Work", without=("actor_id", "index"))
ChangeRequest = body_of(RequestChanges, "ChangeRequest", without=("actor_id", "index"))


async def _act(request, temporal, record, update: Callable[..., Any], arg) -> dict[str, Any]:
    await send_update(temporal, workflow_id(record.id), update, arg, request=request)
    return await campaign_view(request, temporal, record.id)


@router.post("/{campaign_id}/accept", response_model=Campaign)
async def accept(
    body: ContractAcceptance,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = AcceptCampaign(actor_id=principal.id, contract_hash=body.contract_hash)
    return await _act(request, temporal, record, CampaignWorkflow.accept, arg)


@router.post("/{campaign_id}/decline", response_model=Campaign)
async def decline(
    record: VisibleCampaign, principal: CurrentParty, request: Request, temporal: TemporalDep
):
    return await _act(
        request, temporal, record, CampaignWorkflow.decline, Action(actor_id=principal.id)
    )


@router.post("/{campaign_id}/fund", response_model=Campaign, responses=problems(402))
async def fund(
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
    body: Annotated[Funding | None, Body()] = None,
):
    arg = FundRequest(actor_id=principal.id, payment_method=(body or Funding()).payment_method)
    return await _act(request, temporal, record, CampaignWorkflow.fund, arg)


@router.post("/{campaign_id}/cancel", response_model=Campaign)
async def cancel(
    record: VisibleCampaign, principal: CurrentParty, request: Request, temporal: TemporalDep
):
    return await _act(
        request, temporal, record, CampaignWorkflow.cancel, Action(actor_id=principal.id)
    )


@router.post("/{campaign_id}/deliverables/{n}/submit", response_model=Campaign)
async def submit(
    n: Index,
    body: Work,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = SubmitDeliverable(actor_id=principal.id, index=n, **body.model_dump())
    return await _act(request, temporal, record, CampaignWorkflow.submit, arg)


@router.post("/{campaign_id}/deliverables/{n}/approve", response_model=Campaign)
async def approve(
    n: Index,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = DeliverableAction(actor_id=principal.id, index=n)
    return await _act(request, temporal, record, CampaignWorkflow.approve, arg)


@router.post("/{campaign_id}/deliverables/{n}/request-changes", response_model=Campaign)
async def request_changes(
    n: Index,
    body: ChangeRequest,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = RequestChanges(actor_id=principal.id, index=n, reason=body.reason)
    return await _act(request, temporal, record, CampaignWorkflow.request_changes, arg)


@router.post("/{campaign_id}/deliverables/{n}/cancel", response_model=Campaign)
async def cancel_deliverable(
    n: Index,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = DeliverableAction(actor_id=principal.id, index=n)
    return await _act(request, temporal, record, CampaignWorkflow.cancel_deliverable, arg)


class FreezeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


@router.post("/{campaign_id}/freeze", response_model=Campaign)
async def freeze(
    record: VisibleCampaign,
    _: AdminPrincipal,
    request: Request,
    temporal: TemporalDep,
    body: Annotated[FreezeBody | None, Body()] = None,
):
    """Admin: hold every money movement (as a charge dispute on the funding does)."""
    arg = SetFrozen(frozen=True, reason=(body or FreezeBody()).reason or "frozen by the platform")
    return await _act(request, temporal, record, CampaignWorkflow.set_frozen, arg)


@router.post("/{campaign_id}/retry-payouts", response_model=Campaign)
async def retry_payouts(
    record: VisibleCampaign,
    _: AdminPrincipal,
    request: Request,
    temporal: TemporalDep,
    body: Annotated[FreezeBody | None, Body()] = None,
):
    """Admin: payouts the rail refused (`payout_blocked`) go again, once the cause is fixed;
    409 when none is blocked. Stripe's `account.updated` does the same by itself."""
    arg = RetryPayouts(reason=(body or FreezeBody()).reason or "retried by the platform")
    return await _act(request, temporal, record, CampaignWorkflow.retry_payouts, arg)


@router.post("/{campaign_id}/unfreeze", response_model=Campaign)
async def unfreeze(
    record: VisibleCampaign, _: AdminPrincipal, request: Request, temporal: TemporalDep
):
    return await _act(
        request, temporal, record, CampaignWorkflow.set_frozen, SetFrozen(frozen=False)
    )
