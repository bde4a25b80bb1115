"""Reviews (SPEC §6): written through the campaign workflow, which owns the review period and
the double-blind rule; read from the database, where each review shows to its author at once
and to everyone on the campaign once the workflow marked it visible."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from api.auth import CurrentParty, CurrentPrincipal
from api.deps import SessionDep, TemporalDep
from api.routes.campaigns import VisibleCampaign, workflow_id
from api.temporal import send_update
from db.models import ReviewRecord, as_utc
from domain.campaign import Parties, SubmitReview

router = APIRouter(prefix="/v1/campaigns", tags=["reviews"])


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=5000)


def render(r: ReviewRecord) -> dict[str, Any]:
    return {
        "campaign_id": r.campaign_id,
        "side": r.side,
        "reviewer_id": r.reviewer_id,
        "subject_id": r.subject_id,
        "rating": r.rating,
        "comment": r.comment,
        "created_at": as_utc(r.created_at),
        "visible": r.visible,
    }


@router.post("/{campaign_id}/reviews", status_code=201)
async def post_review(
    body: ReviewBody,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
) -> dict[str, Any]:
    """One review per side, after completion and within `review_period` (else 409)."""
    arg = SubmitReview(actor_id=principal.id, **body.model_dump())
    review = await send_update(temporal, workflow_id(record.id), "review", arg, request=request)
    return render(
        ReviewRecord(
            campaign_id=record.id,
            side=review["side"],
            reviewer_id=review["by"],
            subject_id=review["subject_id"],
            rating=review["rating"],
            comment=review["comment"],
            created_at=datetime.fromisoformat(review["at"]),
            visible=review["visible"],
        )
    )


@router.get("/{campaign_id}/reviews")
async def list_reviews(
    record: VisibleCampaign, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """The visible reviews, and the caller's own even while it is still hidden."""
    side = Parties.model_validate(record.snapshot).side_of(principal.id or "")
    rows = (
        await session.exec(
            select(ReviewRecord)
            .where(ReviewRecord.campaign_id == record.id)
            .order_by(ReviewRecord.created_at, ReviewRecord.id)
        )
    ).all()
    shown = [r for r in rows if r.visible or (side is not None and r.side == side)]
    return {
        "items": [render(r) for r in shown],
        "next_cursor": None,  # two reviews at most
        "revealed": record.snapshot.get("reviews_revealed", False),
        "reviews_close_at": record.snapshot.get("reviews_close_at"),
    }
