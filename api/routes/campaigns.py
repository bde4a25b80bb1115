"""Campaigns (SPEC §3, §8): the API starts the workflow and sends it Updates."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import select
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from api.auth import AdminPrincipal, CurrentParty, CurrentPrincipal, Principal, bearer_token
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.pagination import Limit, decode_cursor, newest_snapshots, page
from api.routes.grants import agency_authorised
from api.temporal import send_update
from api.views import campaign_view
from db.models import CampaignRecord, DisputeRecord, Party, TimelineEvent, involving
from domain.campaign import (
    AcceptCampaign,
    Action,
    CampaignCreate,
    CampaignStatus,
    DeliverableAction,
    FundRequest,
    NewCampaign,
    RequestChanges,
    RetryPayouts,
    SetFrozen,
    SubmitDeliverable,
)
from domain.limits import MAX_NOTES_CHARS, Metrics
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


@router.post("", status_code=201)
async def create_campaign(
    body: CampaignCreate,
    principal: CurrentParty,
    request: Request,
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
    try:
        terms = Terms.model_validate({**settings.default_terms, **body.terms})
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
            deliverables=body.deliverables,
            terms=terms,
            created_by=principal.id,
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
    return await campaign_view(request, temporal, new.id)


def _campaign_id(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if not key:
        return "cmp_" + secrets.token_hex(8)
    caller = bearer_token(request) or ""
    return "cmp_" + hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()[:16]


@router.get("")
async def list_campaigns(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: CampaignStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    """The caller's campaigns, newest first, from the read model."""
    query = select(CampaignRecord)
    if not principal.is_admin:
        query = query.where(involving(CampaignRecord, principal.id))
    if status:
        query = query.where(CampaignRecord.status == status.value)
    return await newest_snapshots(session, query, CampaignRecord, cursor, limit)


@router.get("/{campaign_id}")
async def get_campaign(record: CaseCampaign) -> dict[str, Any]:
    """The read model: the workflow writes it before any of its steps completes, so it is as
    fresh as the workflow's own state, and it holds what the workflow keeps outside itself."""
    return record.snapshot


@router.get("/{campaign_id}/timeline")
async def get_timeline(
    record: CaseCampaign,
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    query = select(TimelineEvent).where(TimelineEvent.campaign_id == record.id)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(TimelineEvent.id > position[0])
    rows = (await session.exec(query.order_by(TimelineEvent.id).limit(limit + 1))).all()
    return page(
        rows,
        limit,
        lambda e: [e.id],
        lambda e: {
            "at": e.at,
            "kind": e.kind,
            "actor": e.actor,
            "source": e.source,
            "data": e.data,
        },
    )


# --- actions: each one Update of the campaign workflow ------------------------------------


class ContractAcceptance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contract_hash: str = Field(min_length=64, max_length=64)


class Funding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_method: str = Field(default="pm_card_visa", min_length=1, max_length=255)


class Work(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    notes: str = Field(default="", max_length=MAX_NOTES_CHARS)
    metrics: Metrics = Field(default_factory=dict)


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=5000)


async def _act(request, temporal, record, update: str, arg) -> dict[str, Any]:
    await send_update(temporal, workflow_id(record.id), update, arg, request=request)
    return await campaign_view(request, temporal, record.id)


@router.post("/{campaign_id}/accept")
async def accept(
    body: ContractAcceptance,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = AcceptCampaign(actor_id=principal.id, contract_hash=body.contract_hash)
    return await _act(request, temporal, record, "accept", arg)


@router.post("/{campaign_id}/decline")
async def decline(
    record: VisibleCampaign, principal: CurrentParty, request: Request, temporal: TemporalDep
):
    return await _act(request, temporal, record, "decline", Action(actor_id=principal.id))


@router.post("/{campaign_id}/fund")
async def fund(
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
    body: Annotated[Funding | None, Body()] = None,
):
    arg = FundRequest(actor_id=principal.id, payment_method=(body or Funding()).payment_method)
    return await _act(request, temporal, record, "fund", arg)


@router.post("/{campaign_id}/cancel")
async def cancel(
    record: VisibleCampaign, principal: CurrentParty, request: Request, temporal: TemporalDep
):
    return await _act(request, temporal, record, "cancel", Action(actor_id=principal.id))


@router.post("/{campaign_id}/deliverables/{n}/submit")
async def submit(
    n: Index,
    body: Work,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = SubmitDeliverable(actor_id=principal.id, index=n, **body.model_dump())
    return await _act(request, temporal, record, "submit", arg)


@router.post("/{campaign_id}/deliverables/{n}/approve")
async def approve(
    n: Index,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = DeliverableAction(actor_id=principal.id, index=n)
    return await _act(request, temporal, record, "approve", arg)


@router.post("/{campaign_id}/deliverables/{n}/request-changes")
async def request_changes(
    n: Index,
    body: ChangeRequest,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = RequestChanges(actor_id=principal.id, index=n, reason=body.reason)
    return await _act(request, temporal, record, "request_changes", arg)


@router.post("/{campaign_id}/deliverables/{n}/cancel")
async def cancel_deliverable(
    n: Index,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = DeliverableAction(actor_id=principal.id, index=n)
    return await _act(request, temporal, record, "cancel_deliverable", arg)


class FreezeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


@router.post("/{campaign_id}/freeze")
async def freeze(
    record: VisibleCampaign,
    _: AdminPrincipal,
    request: Request,
    temporal: TemporalDep,
    body: Annotated[FreezeBody | None, Body()] = None,
):
    """Admin: hold every money movement (as a charge dispute on the funding does)."""
    arg = SetFrozen(frozen=True, reason=(body or FreezeBody()).reason or "frozen by the platform")
    return await _act(request, temporal, record, "set_frozen", arg)


@router.post("/{campaign_id}/retry-payouts")
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
    return await _act(request, temporal, record, "retry_payouts", arg)


@router.post("/{campaign_id}/unfreeze")
async def unfreeze(
    record: VisibleCampaign, _: AdminPrincipal, request: Request, temporal: TemporalDep
):
    return await _act(request, temporal, record, "set_frozen", SetFrozen(frozen=False))
