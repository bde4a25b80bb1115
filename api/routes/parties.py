"""Parties: created by the admin; each gets an API key (and a webhook secret) once."""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from api.auth import AdminPrincipal, CurrentPrincipal, hash_api_key, new_api_key
from api.deps import SessionDep, SettingsDep
from api.errors import ProblemError
from api.reputation import reputation
from config import Settings
from db.models import Party
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


class Reputation(BaseModel):
    average_rating: float | None
    reviews: int
    campaigns_completed: int
    disputes_filed: int
    disputes_lost: int


class PartyPublic(BaseModel):
    """What any authenticated caller may see of a party: its profile and reputation."""

    id: str
    name: str
    role: Role
    created_at: datetime
    reputation: Reputation | None = None


class PartyPrivate(PartyPublic):
    """What a party sees of itself."""

    email: str
    webhook_url: str | None
    stripe_account: str | None


class PartyCreated(PartyPrivate):
    api_key: str
    webhook_secret: str | None = None


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


@router.post("", status_code=201, response_model=PartyCreated)
async def create_party(
    body: PartyCreate, _: AdminPrincipal, session: SessionDep, settings: SettingsDep
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
        webhook_secret=("whsec_" + secrets.token_urlsafe(24)) if body.webhook_url else None,
    )
    session.add(party)
    await session.commit()
    return PartyCreated(
        **PartyPrivate.model_validate(party, from_attributes=True).model_dump(),
        api_key=api_key,
        webhook_secret=party.webhook_secret,
    )


@router.get("/me", response_model=PartyPrivate)
async def get_me(principal: CurrentPrincipal, session: SessionDep) -> PartyPrivate:
    if principal.is_admin:
        raise ProblemError(404, "not_found", "The admin token is not a party")
    party = await session.get(Party, principal.id)
    return await _with_reputation(session, PartyPrivate.model_validate(party, from_attributes=True))


@router.get("/{party_id}", response_model=PartyPublic)
async def get_party(party_id: str, _: CurrentPrincipal, session: SessionDep) -> PartyPublic:
    party = await session.get(Party, party_id)
    if party is None:
        raise ProblemError(404, "not_found", "No such party")
    return await _with_reputation(session, PartyPublic.model_validate(party, from_attributes=True))


async def _with_reputation(session, profile: PartyPublic) -> PartyPublic:
    figures = Reputation(**await reputation(session, profile.id))
    return profile.model_copy(update={"reputation": figures})
