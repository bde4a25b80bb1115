"""Mediators' console tokens: how a mediator proves who it is in the Temporal UI."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import CurrentParty
from api.deps import SettingsDep
from api.errors import ProblemError
from domain.authority import console_token
from domain.parties import Role

router = APIRouter(prefix="/v1/mediators", tags=["mediators"])

# A working session in the UI; a leaked token is worthless after it.
CONSOLE_TOKEN_TTL = timedelta(hours=8)


class ConsoleToken(BaseModel):
    mediator_id: str
    console_token: str
    expires_at: datetime


@router.post("/me/console-token", response_model=ConsoleToken)
async def issue_console_token(principal: CurrentParty, settings: SettingsDep) -> ConsoleToken:
    """A token to paste as `console_token` beside `mediator_id` in the mediator Updates sent
    from the Temporal UI (`assign_mediator`, `request_evidence`, `propose_settlement`,
    `issue_ruling`); the worker refuses those Updates without one issued to that mediator."""
    if principal.role != Role.MEDIATOR:
        raise ProblemError(403, "forbidden", "console tokens are for mediators")
    if settings.authority_key is None:
        raise ProblemError(503, "unavailable", "PARLEY_ACTION_SECRET is not configured")
    expires = int(time.time() + CONSOLE_TOKEN_TTL.total_seconds())
    return ConsoleToken(
        mediator_id=principal.id,
        console_token=console_token(settings.authority_key, principal.id, expires),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
