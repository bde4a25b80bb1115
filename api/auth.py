"""Bearer authentication: a party's API key, or the admin bootstrap token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import select

from api.deps import SessionDep, SettingsDep
from api.errors import ProblemError
from db.models import Party
from domain.parties import Role


def new_api_key() -> str:
    return "prl_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a plain digest is enough (no need for a slow KDF).
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a party, or the admin (id and role None)."""

    id: str | None
    role: Role | None
    name: str = "admin"

    @property
    def is_admin(self) -> bool:
        return self.id is None


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def current_principal(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Principal:
    token = bearer_token(request)
    if not token:
        raise ProblemError(401, "unauthorized", "Missing bearer API key")
    admin = settings.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(id=None, role=None)
    party = (
        await session.exec(select(Party).where(Party.api_key_hash == hash_api_key(token)))
    ).first()
    if party is None:
        raise ProblemError(401, "unauthorized", "Invalid API key")
    return Principal(id=party.id, role=Role(party.role), name=party.name)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise ProblemError(403, "forbidden", "Only the admin may do this")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


async def require_party(principal: CurrentPrincipal) -> Principal:
    if principal.is_admin:
        raise ProblemError(403, "forbidden", "This action needs a party's API key")
    return principal


CurrentParty = Annotated[Principal, Depends(require_party)]
