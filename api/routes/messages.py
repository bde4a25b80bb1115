"""The campaign thread (SPEC §6): parties, their agency and the assigned mediator.

Stored in the database, read with a cursor, and live as Server-Sent Events.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import select

from api.auth import CurrentPrincipal
from api.deps import SessionDep
from api.errors import ProblemError
from api.message_bus import MESSAGES, event_stream, resume_point
from api.openapi import EVENT_STREAM
from api.pagination import DEFAULT_LIMIT, Limit, decode_cursor, page
from api.resources import Message as MessageResource
from api.resources import Page
from api.routes.campaigns import CaseCampaign
from db.models import Message, as_utc
from domain.contract import rfc3339

router = APIRouter(prefix="/v1/campaigns", tags=["messages"])

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


class MessagePage(Page[MessageResource]):
    pass


@router.post("/{campaign_id}/messages", status_code=201, response_model=MessageResource)
async def post_message(
    body: MessageCreate,
    campaign_id: Thread,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
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
    response.headers["Location"] = f"/v1/campaigns/{campaign_id}/messages/{message.id}"
    return render(message)


@router.get("/{campaign_id}/messages", response_model=MessagePage)
async def list_messages(
    campaign_id: Thread,
    session: SessionDep,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Oldest first; `next_cursor` continues after the last one returned."""
    query = select(Message).where(Message.campaign_id == campaign_id)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(Message.seq > position[0])
    rows = (await session.exec(query.order_by(Message.seq).limit(limit + 1))).all()
    return page(rows, limit, lambda m: [m.seq], render)


@router.get(
    "/{campaign_id}/messages/stream",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)
async def stream_messages(
    campaign_id: Thread,
    request: Request,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, description="replay messages after this seq")] = None,
) -> StreamingResponse:
    """`text/event-stream` of new messages (`id:` is the seq; `Last-Event-ID` resumes)."""
    after = resume_point(request, after)
    return await event_stream(request, session, MESSAGES, campaign_id, after, _message_event)


def _message_event(message: Message) -> tuple[str, dict[str, Any]]:
    return "message", render(message)


# After the stream: `/messages/stream` is not a message id.
@router.get("/{campaign_id}/messages/{message_id}", response_model=MessageResource)
async def get_message(
    message_id: Annotated[str, Path(max_length=40)], campaign_id: Thread, session: SessionDep
) -> dict[str, Any]:
    query = select(Message).where(Message.id == message_id, Message.campaign_id == campaign_id)
    message = (await session.exec(query)).first()
    if message is None:
        raise ProblemError(404, "not_found", "No such message")
    return render(message)
