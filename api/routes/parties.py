"""Parties: created by the admin; each gets an API key (and a webhook secret) once."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import tuple_, update
from sqlmodel import select

from api.auth import AdminPrincipal, CurrentPrincipal, hash_api_key, new_api_key
from api.deps import SessionDep, SettingsDep
from api.errors import ProblemError
from api.pagination import DEFAULT_LIMIT, Limit, decode_cursor, page
from api.reputation import reputation
from api.resources import (
    ApiKey,
    PartyCreated,
    PartyList,
    PartyPrivate,
    PartyUpdated,
    Reputation,
    WebhookSecret,
    partial_of,
)
from api.resources import Party as PartyPublic
from config import Settings
from db.models import Party, utcnow
from domain.parties import Role
from domain.webhook_targets import WebhookTargetRefused, check_url

router = APIRouter(prefix="/v1/parties", tags=["parties"])

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PartyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    webhook_url: HttpUrl | None = None
    stripe_account: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]+$")


def new_party_id() -> str:
    return "pty_" + secrets.token_hex(8)


def _check_webhook_url(url: str, settings: Settings) -> None:
    """A 422 unless Parley may call the URL (https, a public host: domain/webhook_targets.py)."""
    try:
        check_url(
            url,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private,
        )
    except WebhookTargetRefused as refused:
        errors = [{"loc": ["body", "webhook_url"], "msg": str(refused), "type": "value_error"}]
        raise ProblemError(
            422, "validation_error", f"body.webhook_url: {refused}", errors=errors
        ) from None


@router.post("", status_code=201, response_model=PartyCreated, name="create")
async def create_party(
    body: PartyCreate,
    _: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> PartyCreated:
    if body.webhook_url:
        _check_webhook_url(str(body.webhook_url), settings)
    api_key = new_api_key()
    party = Party(
        id=new_party_id(),
        name=body.name,
        role=body.role,
        email=body.email,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        stripe_account=body.stripe_account,
        api_key_hash=hash_api_key(api_key),
        webhook_secret=_new_webhook_secret() if body.webhook_url else None,
    )
    session.add(party)
    await session.commit()
    response.headers["Location"] = f"/v1/parties/{party.id}"
    return PartyCreated(
        **PartyPrivate.model_validate(party, from_attributes=True).model_dump(),
        api_key=api_key,
        webhook_secret=party.webhook_secret,
    )


@router.get("/me", response_model=PartyPrivate, name="get_me")
async def get_me(principal: CurrentPrincipal, session: SessionDep) -> PartyPrivate:
    party = await _me(principal, session)
    return await _with_reputation(session, PartyPrivate.model_validate(party, from_attributes=True))


PartyUpdate = partial_of(PartyCreate, "PartyUpdate", only=("email", "webhook_url"))


def _new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


async def _me(principal, session) -> Party:
    if principal.is_admin:
        raise ProblemError(404, "not_found", "The admin token is not a party")
    return await session.get(Party, principal.id)


@router.patch("/me", response_model=PartyUpdated, name="update_me")
async def update_me(
    body: PartyUpdate, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> PartyUpdated:
    """Change the email or the webhook URL (null removes it). A first webhook URL gets a
    webhook secret, answered once here."""
    party = await _me(principal, session)
    issued = None
    if "email" in body.model_fields_set:
        if body.email is None:
            raise ProblemError(422, "validation_error", "body.email: may not be null")
        party.email = body.email
    if "webhook_url" in body.model_fields_set:
        if body.webhook_url is None:
            party.webhook_url = None
        else:
            _check_webhook_url(str(body.webhook_url), settings)
            party.webhook_url = str(body.webhook_url)
            if party.webhook_secret is None:
                party.webhook_secret = issued = _new_webhook_secret()
    session.add(party)
    await session.commit()
    await session.refresh(party)
    profile = await _with_reputation(
        session, PartyPrivate.model_validate(party, from_attributes=True)
    )
    return PartyUpdated(**profile.model_dump(), webhook_secret=issued)


@router.post("/me/webhook-secret", response_model=WebhookSecret, name="rotate_webhook_secret")
async def rotate_webhook_secret(principal: CurrentPrincipal, session: SessionDep) -> WebhookSecret:
    """A new webhook secret, shown once; deliveries are signed with it from now on."""
    party = await _me(principal, session)
    party.webhook_secret = _new_webhook_secret()
    session.add(party)
    await session.commit()
    return WebhookSecret(webhook_secret=party.webhook_secret)


@router.post("/me/api-key", response_model=ApiKey, name="rotate_api_key")
async def rotate_api_key(
    principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> ApiKey:
    """A new API key, shown once, valid at once. The key it replaces keeps working for the
    grace period (`PARLEY_API_KEY_GRACE_SECONDS`, 24 h by default), so deployments can switch
    over; a key replaced earlier stops now. Only the current key may rotate (403 with the
    replaced one)."""
    party = await _me(principal, session)
    if principal.previous_key:
        raise ProblemError(
            403, "forbidden", "This API key was replaced: rotate with the current key"
        )
    api_key = new_api_key()
    grace = timedelta(seconds=settings.api_key_grace_seconds)
    expires = utcnow() + grace if grace else None
    # Conditional on the key the caller holds: of two rotations at once one wins, the other
    # is a 409 (its new key would otherwise be handed out and never work).
    rotated = await session.exec(
        update(Party)
        .where(Party.id == party.id, Party.api_key_hash == party.api_key_hash)
        .values(
            api_key_hash=hash_api_key(api_key),
            previous_api_key_hash=party.api_key_hash if expires else None,
            previous_api_key_expires_at=expires,
        )
    )
    if rotated.rowcount != 1:
        await session.rollback()
        raise ProblemError(409, "invalid_state", "The API key was rotated meanwhile; retry")
    await session.commit()
    return ApiKey(api_key=api_key, previous_key_expires_at=expires)


@router.get("", response_model=PartyList, name="list")
async def list_parties(
    _: AdminPrincipal,
    session: SessionDep,
    role: Role | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict:
    """Admin: every party, newest first."""
    query = select(Party)
    if role:
        query = query.where(Party.role == role)
    if (position := decode_cursor(cursor, datetime, str)) is not None:
        query = query.where(tuple_(Party.created_at, Party.id) < tuple(position))
    query = query.order_by(Party.created_at.desc(), Party.id.desc()).limit(limit + 1)
    rows = (await session.exec(query)).all()
    return page(
        rows,
        limit,
        lambda p: [p.created_at.isoformat(), p.id],
        lambda p: PartyPrivate.model_validate(p, from_attributes=True),
    )


@router.get("/{party_id}", response_model=PartyPublic, name="get")
async def get_party(
    party_id: Annotated[str, Path(max_length=40)], _: CurrentPrincipal, session: SessionDep
) -> PartyPublic:
    party = await session.get(Party, party_id)
    if party is None:
        raise ProblemError(404, "not_found", "No such party")
    return await _with_reputation(session, PartyPublic.model_validate(party, from_attributes=True))


PartyId = Annotated[str, Path(max_length=40)]


@router.post("/{party_id}/deactivate", response_model=PartyPrivate, name="deactivate")
async def deactivate_party(
    party_id: PartyId, _: AdminPrincipal, session: SessionDep
) -> PartyPrivate:
    """Admin: every API key of the party answers 401 from now on (until reactivated). Its
    campaigns and disputes are not touched: workflows go on, money moves as agreed, and it
    still receives notifications. Deactivating a deactivated party changes nothing."""
    return await _set_active(session, party_id, active=False)


@router.post("/{party_id}/reactivate", response_model=PartyPrivate, name="reactivate")
async def reactivate_party(
    party_id: PartyId, _: AdminPrincipal, session: SessionDep
) -> PartyPrivate:
    """Admin: the party's keys work again (the current one, and a replaced one still within
    its grace period)."""
    return await _set_active(session, party_id, active=True)


async def _set_active(session, party_id: str, *, active: bool) -> PartyPrivate:
    party = await session.get(Party, party_id)
    if party is None:
        raise ProblemError(404, "not_found", "No such party")
    if active != (party.deactivated_at is None):
        party.deactivated_at = None if active else utcnow()
        session.add(party)
        await session.commit()
        await session.refresh(party)
    return await _with_reputation(session, PartyPrivate.model_validate(party, from_attributes=True))


async def _with_reputation(session, profile: PartyPublic) -> PartyPublic:
    figures = Reputation(**await reputation(session, profile.id))
    return profile.model_copy(update={"reputation": figures})
