"""The campaign thread (SPEC §6): parties, their agency and the assigned mediator.

Stored in the database, read with a cursor, and live as Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlmodel import select

from api.auth import CurrentPrincipal
from api.deps import SessionDep
from api.errors import ProblemError
from api.pagination import Limit, decode_cursor, page
from api.routes.campaigns import CaseCampaign
from db.models import Message, as_utc
from domain.contract import rfc3339

router = APIRouter(prefix="/v1/campaigns", tags=["messages"])

KEEP_ALIVE_SECONDS = 15
MAX_BODY = 5000


async def thread_of(record: CaseCampaign) -> str:
    """The campaign id, if the caller may read its thread (parties, assigned mediator)."""
    return record.id


Thread = Annotated[str, Depends(thread_of)]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=MAX_BODY)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def render(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "seq": message.seq,
        "campaign_id": message.campaign_id,
        "author_id": message.author_id,
        "body": message.body,
        "created_at": rfc3339(as_utc(message.created_at)),
    }


@router.post("/{campaign_id}/messages", status_code=201)
async def post_message(
    body: MessageCreate,
    campaign_id: Thread,
    principal: CurrentPrincipal,
    request: Request,
    session: SessionDep,
) -> dict[str, Any]:
    if principal.is_admin:
        raise ProblemError(403, "forbidden", "the admin token does not post messages")
    bus = request.app.state.message_bus
    message = Message(
        id="msg_" + secrets.token_hex(8),
        campaign_id=campaign_id,
        author_id=principal.id,
        body=body.body,
    )
    session.add(message)
    await session.flush()
    await bus.announce(session, campaign_id)
    await session.commit()
    bus.delivered(campaign_id)
    return render(message)


@router.get("/{campaign_id}/messages")
async def list_messages(
    campaign_id: Thread,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Oldest first; `next_cursor` continues after the last one returned."""
    query = select(Message).where(Message.campaign_id == campaign_id)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(Message.seq > position[0])
    rows = (await session.exec(query.order_by(Message.seq).limit(limit + 1))).all()
    return page(rows, limit, lambda m: [m.seq], render)


@router.get("/{campaign_id}/messages/stream")
async def stream_messages(
    campaign_id: Thread,
    request: Request,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, description="replay messages after this seq")] = None,
) -> StreamingResponse:
    """`text/event-stream` of new messages (`id:` is the seq; `Last-Event-ID` resumes)."""
    resume = request.headers.get("last-event-id")
    if after is None and resume and resume.isdigit():
        after = int(resume)
    if after is None:  # from now on
        latest = select(func.max(Message.seq)).where(Message.campaign_id == campaign_id)
        after = (await session.exec(latest)).one() or 0
    sessionmaker = request.app.state.sessionmaker
    bus = request.app.state.message_bus

    async def events():
        last = after
        with bus.subscription(campaign_id) as wake:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                wake.clear()
                async with sessionmaker() as reader:
                    query = (
                        select(Message)
                        .where(Message.campaign_id == campaign_id, Message.seq > last)
                        .order_by(Message.seq)
                        .limit(100)
                    )
                    rows = (await reader.exec(query)).all()
                for row in rows:
                    last = row.seq
                    yield f"id: {row.seq}\nevent: message\ndata: {json.dumps(render(row))}\n\n"
                if rows:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
