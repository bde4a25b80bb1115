"""A party's reputation (SPEC §6), computed from the read models when its profile is read.

Counted for the brand or creator and for an agency that represented their side:
- `reviews`, `average_rating`: the visible reviews of that side (double-blind ones stay out);
- `campaigns_completed`: campaigns it is on that completed;
- `disputes_filed`, `disputes_lost`: disputes filed by its side, and resolved ones where its
  side got less than half of the disputed amount (a withdrawal or an even split loses nobody).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import select

from db.models import CampaignRecord, DisputeRecord, ReviewRecord, involving
from domain.campaign import CampaignStatus, Parties
from domain.dispute import Outcome, Stage


async def reputation(session, party_id: str) -> dict[str, Any]:
    count, average = (
        await session.exec(
            select(func.count(ReviewRecord.id), func.avg(ReviewRecord.rating)).where(
                ReviewRecord.visible,
                or_(
                    ReviewRecord.subject_id == party_id, ReviewRecord.subject_agency_id == party_id
                ),
            )
        )
    ).one()
    completed = (
        await session.exec(
            select(func.count(CampaignRecord.id)).where(
                CampaignRecord.status == CampaignStatus.COMPLETED.value,
                involving(CampaignRecord, party_id),
            )
        )
    ).one()
    disputes = (
        await session.exec(select(DisputeRecord).where(involving(DisputeRecord, party_id)))
    ).all()
    filed = lost = 0
    for dispute in disputes:
        snapshot = dispute.snapshot
        side = Parties.model_validate(snapshot).side_of(party_id)
        filed += snapshot["claimant_side"] == side
        if snapshot["stage"] == Stage.RESOLVED.value:
            lost += Outcome.model_validate(snapshot["outcome"]).losing_side == side
    return {
        "average_rating": round(float(average), 2) if count else None,
        "reviews": count,
        "campaigns_completed": completed,
        "disputes_filed": filed,
        "disputes_lost": lost,
    }
