"""The ledger (SPEC §9): every leg of money a campaign moved, as the rail knows it, for the
parties, the assigned mediator and the admin; and the whole ledger, filtered, for finance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import select

from api.auth import AdminPrincipal
from api.deps import SessionDep
from api.pagination import DEFAULT_LIMIT, Limit, decode_cursor, page
from api.routes.campaigns import CaseCampaign
from db.models import LedgerEntry as LedgerRow
from db.models import as_utc
from domain.contract import rfc3339

router = APIRouter(tags=["ledger"])

LedgerKindName = Literal["fund", "release", "commission", "fee", "refund"]
LedgerStateName = Literal["pending", "succeeded", "failed"]


class LedgerEntry(BaseModel):
    """One rail call: a leg of money a campaign moved (SPEC §9)."""

    id: int
    campaign_id: str
    kind: str
    amount: int
    currency: str
    state: str
    idempotency_key: str
    rail: str
    rail_reference: str | None
    error: str | None  # the rail's reason, for a failed leg
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, entry: LedgerRow) -> LedgerEntry:
        return cls(
            id=entry.id or 0,
            campaign_id=entry.campaign_id,
            kind=entry.kind,
            amount=entry.amount,
            currency=entry.currency,
            state=entry.state,
            idempotency_key=entry.idempotency_key,
            rail=entry.rail,
            rail_reference=entry.rail_reference,
            error=entry.error,
            created_at=rfc3339(as_utc(entry.created_at)),
            updated_at=rfc3339(as_utc(entry.updated_at)),
        )


class LedgerEntryPage(BaseModel):
    items: list[LedgerEntry]
    next_cursor: str | None


async def _page(session, query, cursor: str | None, limit: int) -> LedgerEntryPage:
    """Oldest first, by row id: the order the legs were written."""
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(LedgerRow.id > position[0])
    rows = (await session.exec(query.order_by(LedgerRow.id).limit(limit + 1))).all()
    return LedgerEntryPage(**page(rows, limit, lambda e: [e.id], LedgerEntry.of))


@router.get("/v1/campaigns/{campaign_id}/ledger", response_model=LedgerEntryPage, name="campaign")
async def campaign_ledger(
    record: CaseCampaign,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> LedgerEntryPage:
    query = select(LedgerRow).where(LedgerRow.campaign_id == record.id)
    return await _page(session, query, cursor, limit)


@router.get("/v1/ledger", response_model=LedgerEntryPage, name="list")
async def whole_ledger(
    _: AdminPrincipal,
    session: SessionDep,
    campaign_id: Annotated[str | None, Query(max_length=40)] = None,
    kind: LedgerKindName | None = None,
    state: LedgerStateName | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> LedgerEntryPage:
    """Admin: what a finance team reconciles against the rail; `state=pending` or `failed`
    lists what needs a look."""
    query = select(LedgerRow)
    if campaign_id:
        query = query.where(LedgerRow.campaign_id == campaign_id)
    if kind:
        query = query.where(LedgerRow.kind == kind)
    if state:
        query = query.where(LedgerRow.state == state)
    if created_from:
        query = query.where(LedgerRow.created_at >= created_from)
    if created_before:
        query = query.where(LedgerRow.created_at < created_before)
    return await _page(session, query, cursor, limit)
