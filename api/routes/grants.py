"""Agency grants (SPEC §1): a brand or creator authorises an agency to act for it.

An agency acts for a party only on campaigns that name it, and a campaign may name it only
while the party it represents has a live grant for it (checked at creation). The party issues
and revokes its own grants at `/v1/parties/me/agency-grants`; the admin does so for any party
at `/v1/parties/{party_id}/agency-grants`. Revoking stops new campaigns; a running campaign
keeps the agency its signed contract names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_serializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.auth import AdminPrincipal, CurrentParty, Principal
from api.deps import SessionDep
from api.errors import ProblemError
from api.pagination import Limit, decode_cursor, page
from db.models import AgencyGrant, Party, as_utc, utcnow
from domain.contract import rfc3339
from domain.parties import Role

router = APIRouter(prefix="/v1/parties", tags=["agency grants"])

GRANTORS = (Role.BRAND, Role.CREATOR)
ADMIN = "admin"  # `granted_by` / `revoked_by` when the admin acted


async def agency_authorised(session, grantor_id: str, agency_id: str) -> bool:
    """Whether `grantor_id` (a brand or creator) has a live grant for `agency_id`."""
    grant = (
        await session.exec(
            select(AgencyGrant).where(
                AgencyGrant.grantor_id == grantor_id,
                AgencyGrant.agency_id == agency_id,
                AgencyGrant.revoked_at.is_(None),
            )
        )
    ).first()
    return grant is not None


class AgencyGrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency_id: str = Field(min_length=1, max_length=40)


class AgencyGrantPublic(BaseModel):
    grantor_id: str
    grantor_role: Role
    agency_id: str
    granted_at: datetime
    revoked_at: datetime | None
    active: bool

    @field_serializer("granted_at", "revoked_at")
    def _rfc3339(self, value: datetime | None) -> str | None:
        return rfc3339(as_utc(value)) if value else None

    @classmethod
    def of(cls, grant: AgencyGrant) -> AgencyGrantPublic:
        return cls(
            grantor_id=grant.grantor_id,
            grantor_role=grant.grantor_role,
            agency_id=grant.agency_id,
            granted_at=grant.granted_at,
            revoked_at=grant.revoked_at,
            active=grant.revoked_at is None,
        )


class AgencyGrantList(BaseModel):
    items: list[AgencyGrantPublic]
    next_cursor: str | None


# --- whose grants: the caller's own ("me"), or any party's for the admin -----------------------


async def _me(principal: CurrentParty, session: SessionDep) -> Party:
    return await session.get(Party, principal.id)


async def _named(
    party_id: Annotated[str, Path(max_length=40)], _: AdminPrincipal, session: SessionDep
) -> Party:
    party = await session.get(Party, party_id)
    if party is None:
        raise ProblemError(404, "not_found", "No such party")
    return party


Me = Annotated[Party, Depends(_me)]
Named = Annotated[Party, Depends(_named)]
AgencyId = Annotated[str, Path(max_length=40)]


def _grantor(party: Party) -> Party:
    if party.role not in GRANTORS:
        raise ProblemError(403, "forbidden", "only a brand or a creator authorises an agency")
    return party


async def _grant(
    session, grantor: Party, agency_id: str, actor: str, response: Response
) -> AgencyGrantPublic:
    agency = await session.get(Party, agency_id)
    if agency is None or agency.role != Role.AGENCY:
        raise ProblemError(422, "validation_error", f"agency_id: no agency with id {agency_id}")
    grant = (
        await session.exec(
            select(AgencyGrant).where(
                AgencyGrant.grantor_id == grantor.id, AgencyGrant.agency_id == agency_id
            )
        )
    ).first()
    if grant is not None and grant.revoked_at is None:
        response.status_code = 200  # already live: nothing created
        return AgencyGrantPublic.of(grant)
    if grant is None:
        grant = AgencyGrant(
            grantor_id=grantor.id, grantor_role=grantor.role, agency_id=agency_id, granted_by=actor
        )
    else:  # granted again after a revocation
        grant.granted_at, grant.granted_by = utcnow(), actor
        grant.revoked_at = grant.revoked_by = None
    session.add(grant)
    try:
        await session.commit()
    except IntegrityError:  # the same grant issued concurrently: answer the one that won
        await session.rollback()
        return await _grant(session, grantor, agency_id, actor, response)
    return AgencyGrantPublic.of(grant)


async def _list(session, party: Party, cursor: str | None, limit: int) -> AgencyGrantList:
    """A brand's or creator's grants as issued; an agency's as held. Newest first."""
    if party.role == Role.AGENCY:
        query = select(AgencyGrant).where(AgencyGrant.agency_id == party.id)
    else:
        query = select(AgencyGrant).where(AgencyGrant.grantor_id == _grantor(party).id)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(AgencyGrant.id < position[0])
    rows = (await session.exec(query.order_by(AgencyGrant.id.desc()).limit(limit + 1))).all()
    return AgencyGrantList(**page(rows, limit, lambda g: [g.id], AgencyGrantPublic.of))


async def _revoke(session, grantor: Party, agency_id: str, actor: str) -> AgencyGrantPublic:
    grant = (
        await session.exec(
            select(AgencyGrant).where(
                AgencyGrant.grantor_id == grantor.id, AgencyGrant.agency_id == agency_id
            )
        )
    ).first()
    if grant is None:
        raise ProblemError(404, "not_found", "No grant for this agency")
    if grant.revoked_at is None:  # revoking twice changes nothing
        grant.revoked_at, grant.revoked_by = utcnow(), actor
        session.add(grant)
        await session.commit()
    return AgencyGrantPublic.of(grant)


def _actor(principal: Principal) -> str:
    return principal.id or ADMIN


# "me" routes come first: `/me/…` must not be read as a party id.


@router.post("/me/agency-grants", status_code=201, response_model=AgencyGrantPublic)
async def grant_my_agency(
    body: AgencyGrantCreate,
    me: Me,
    principal: CurrentParty,
    session: SessionDep,
    response: Response,
) -> AgencyGrantPublic:
    """A brand or creator authorises an agency to act for it (200 if already live)."""
    return await _grant(session, _grantor(me), body.agency_id, _actor(principal), response)


@router.get("/me/agency-grants", response_model=AgencyGrantList)
async def list_my_agency_grants(
    me: Me, session: SessionDep, cursor: str | None = None, limit: Limit = 20
) -> AgencyGrantList:
    """A brand's or creator's grants; an agency's: who has authorised it."""
    return await _list(session, me, cursor, limit)


@router.post("/me/agency-grants/{agency_id}/revoke", response_model=AgencyGrantPublic)
async def revoke_my_agency_grant(
    agency_id: AgencyId, me: Me, principal: CurrentParty, session: SessionDep
) -> AgencyGrantPublic:
    return await _revoke(session, _grantor(me), agency_id, _actor(principal))


@router.post("/{party_id}/agency-grants", status_code=201, response_model=AgencyGrantPublic)
async def grant_agency_for(
    body: AgencyGrantCreate,
    party: Named,
    principal: AdminPrincipal,
    session: SessionDep,
    response: Response,
) -> AgencyGrantPublic:
    """Admin: authorise an agency on a brand's or creator's behalf."""
    return await _grant(session, _grantor(party), body.agency_id, _actor(principal), response)


@router.get("/{party_id}/agency-grants", response_model=AgencyGrantList)
async def list_agency_grants_of(
    party: Named, session: SessionDep, cursor: str | None = None, limit: Limit = 20
) -> AgencyGrantList:
    return await _list(session, party, cursor, limit)


@router.post("/{party_id}/agency-grants/{agency_id}/revoke", response_model=AgencyGrantPublic)
async def revoke_agency_grant_of(
    agency_id: AgencyId, party: Named, principal: AdminPrincipal, session: SessionDep
) -> AgencyGrantPublic:
    return await _revoke(session, _grantor(party), agency_id, _actor(principal))
