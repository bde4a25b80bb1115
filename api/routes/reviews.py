"""Reviews (SPEC §6): written through the campaign workflow, which owns the review period and
the double-blind rule; read from the database, where each review shows to its author at once
and to everyone on the campaign once the workflow marked it visible."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlmodel import select

from api.auth import CurrentParty, CurrentPrincipal
from api.deps import SessionDep, TemporalDep
from api.errors import ProblemError
from api.resources import Review, ReviewPage, body_of
from api.routes.campaigns import VisibleCampaign, workflow_id
from api.temporal import send_update
from db.models import ReviewRecord, as_utc
from domain.campaign import Parties, SubmitReview
from workflows.campaign import CampaignWorkflow

router = APIRouter(prefix="/v1/campaigns", tags=["reviews"])

ReviewBody = body_of(SubmitReview, "ReviewCreate", without=("actor_id",))


def render(r: ReviewRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "campaign_id": r.campaign_id,
        "side": r.side,
        "reviewer_id": r.reviewer_id,
        "subject_id": r.subject_id,
        "rating": r.rating,
        "comment": r.comment,
        "created_at": as_utc(r.created_at),
        "visible": r.visible,
    }


async def _review_of(session, campaign_id: str, side: str) -> ReviewRecord | None:
    query = select(ReviewRecord).where(
        ReviewRecord.campaign_id == campaign_id, ReviewRecord.side == side
    )
    return (await session.exec(query)).first()


@router.post("/{campaign_id}/reviews", status_code=201, response_model=Review)
async def post_review(
    body: ReviewBody,
    record: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    response: Response,
    session: SessionDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    """One review per side, after completion and within `review_period` (else 409). The
    workflow records it before it answers, so it is read back with its id."""
    arg = SubmitReview(actor_id=principal.id, **body.model_dump())
    review = await send_update(
        temporal, workflow_id(record.id), CampaignWorkflow.review, arg, request=request
    )
    stored = await _review_of(session, record.id, review["side"])
    if stored is None:  # not expected: the records activity ran before the Update answered
        raise ProblemError(503, "outcome_unknown", "The review was taken; read it in a moment")
    response.headers["Location"] = f"/v1/campaigns/{record.id}/reviews/{stored.id}"
    return render(stored)


@router.get("/{campaign_id}/reviews", response_model=ReviewPage)
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


@router.get("/{campaign_id}/reviews/{review_id}", response_model=Review)
async def get_review(
    review_id: Annotated[int, Path(ge=1, le=2**62)],
    record: VisibleCampaign,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    """A review the caller may see: visible, or its own side's."""
    side = Parties.model_validate(record.snapshot).side_of(principal.id or "")
    review = await session.get(ReviewRecord, review_id)
    if (
        review is None
        or review.campaign_id != record.id
        or not (review.visible or (side is not None and review.side == side))
    ):
        raise ProblemError(404, "not_found", "No such review")
    return render(review)
