"""Bearer authentication: a party's API key, or the admin bootstrap token; and, on the metrics
route only, an integration key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import or_
from sqlmodel import select

from api.deps import SessionDep, SettingsDep
from api.errors import ProblemError
from api.observability import party_id
from db.models import IntegrationKey, Party, as_utc, utcnow
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
    # Authenticated with the key a rotation replaced (valid until its grace period ends).
    previous_key: bool = False

    @property
    def is_admin(self) -> bool:
        return self.id is None


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# Documents the bearer scheme in OpenAPI (Swagger UI's Authorize button); the key is read and
# refused below, so a missing one is Parley's 401 problem, not FastAPI's 403.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="A party's API key, or the admin token"
)


async def current_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    token = bearer_token(request)
    if not token:
        raise ProblemError(401, "unauthorized", "Missing bearer API key")
    admin = settings.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(id=None, role=None)
    digest = hash_api_key(token)
    query = select(Party).where(
        or_(Party.api_key_hash == digest, Party.previous_api_key_hash == digest)
    )
    party = (await session.exec(query)).first()
    if party is None:
        raise ProblemError(401, "unauthorized", "Invalid API key")
    previous = party.api_key_hash != digest
    if previous:
        expires = party.previous_api_key_expires_at
        if expires is None or as_utc(expires) <= utcnow():
            raise ProblemError(
                401,
                "unauthorized",
                "This API key was replaced and its grace period has ended; use the new key",
            )
    if party.deactivated_at is not None:
        raise ProblemError(
            401, "unauthorized", "This party is deactivated: its API keys are refused"
        )
    party_id.set(party.id)  # on this request's log lines
    return Principal(id=party.id, role=Role(party.role), name=party.name, previous_key=previous)


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


# --- integration keys (issue #15): metrics integrations, not parties -----------------------


def new_integration_key() -> str:
    return "pik_" + secrets.token_urlsafe(32)


async def current_integration(
    request: Request,
    session: SessionDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> IntegrationKey:
    """An integration key an admin issued (`Authorization: Bearer pik_…`): it may post metric
    snapshots and nothing else; a party key or the admin token is not one."""
    token = bearer_token(request)
    if not token:
        raise ProblemError(401, "unauthorized", "Missing bearer integration key")
    query = select(IntegrationKey).where(IntegrationKey.key_hash == hash_api_key(token))
    key = (await session.exec(query)).first()
    if key is None:
        raise ProblemError(401, "unauthorized", "Invalid integration key")
    if key.revoked_at is not None:
        raise ProblemError(401, "unauthorized", "This integration key was revoked")
    return key


CurrentIntegration = Annotated[IntegrationKey, Depends(current_integration)]
