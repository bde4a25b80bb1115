"""The in-app inbox (SPEC §6): every state change and reminder addressed to the caller."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlmodel import select

from api.auth import CurrentParty
from api.deps import SessionDep
from api.errors import ProblemError
from api.pagination import DEFAULT_LIMIT, Limit, decode_cursor, page
from api.resources import Notification as NotificationResource
from api.resources import Page
from db.models import Notification, as_utc, utcnow
from domain.contract import rfc3339

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


def render(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "type": n.kind,  # as the webhook payload names it
        "title": n.title,
        "body": n.body,
        "campaign_id": n.campaign_id,
        "dispute_id": n.dispute_id,
        "data": n.data,
        # The same RFC 3339 instant as the webhook payload; SQLite hands timestamps back naive.
        "created_at": rfc3339(as_utc(n.created_at)),
        "read_at": rfc3339(as_utc(n.read_at)) if n.read_at else None,
        "delivery": {"email": n.email_state, "webhook": n.webhook_state},
    }


class NotificationPage(Page[NotificationResource]):
    pass


@router.get("", response_model=NotificationPage, name="list")
async def list_notifications(
    principal: CurrentParty,
    session: SessionDep,
    unread: bool = False,
    campaign_id: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[
        str | None, Query(max_length=60, description="e.g. dispute.filed, reminder.funding")
    ] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Newest first; `?unread=true` for the unread ones."""
    query = select(Notification).where(Notification.party_id == principal.id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    if campaign_id:
        query = query.where(Notification.campaign_id == campaign_id)
    if type:
        query = query.where(Notification.kind == type)
    if (position := decode_cursor(cursor, int)) is not None:
        query = query.where(Notification.seq < position[0])
    rows = (await session.exec(query.order_by(Notification.seq.desc()).limit(limit + 1))).all()
    return page(rows, limit, lambda n: [n.seq], render)


@router.post("/{notification_id}/read", response_model=NotificationResource)
async def mark_read(
    notification_id: Annotated[str, Path(max_length=40)],
    principal: CurrentParty,
    session: SessionDep,
) -> dict[str, Any]:
    notification = (
        await session.exec(select(Notification).where(Notification.id == notification_id))
    ).first()
    if notification is None or notification.party_id != principal.id:
        raise ProblemError(404, "not_found", "No such notification")
    if notification.read_at is None:  # reading twice keeps the first time
        notification.read_at = utcnow()
        session.add(notification)
        await session.commit()
    return render(notification)
