"""Reading a campaign or a dispute after an action: Updates answer only an acknowledgement
(their answers are stored in workflow history), so the resource comes from the `state` query
— or from the read model once the workflow has ended — with what lives outside the workflow
(each submission's notes and metrics, on the timeline) put back."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlmodel import select
from temporalio.client import Client

from api.temporal import query_state
from db.models import CampaignRecord, DisputeRecord, TimelineEvent


async def campaign_view(request: Request, temporal: Client, campaign_id: str) -> dict[str, Any]:
    state = await query_state(temporal, f"campaign-{campaign_id}")
    async with request.app.state.sessionmaker() as session:
        if state is None:
            state = (await session.get(CampaignRecord, campaign_id)).snapshot
        return await with_submissions(session, state)


async def dispute_view(request: Request, temporal: Client, dispute_id: str) -> dict[str, Any]:
    state = await query_state(temporal, f"dispute-{dispute_id}")
    if state is None:
        async with request.app.state.sessionmaker() as session:
            state = (await session.get(DisputeRecord, dispute_id)).snapshot
    return state


async def with_submissions(session, campaign: dict[str, Any]) -> dict[str, Any]:
    """Every submission of every deliverable, from the campaign's timeline: the workflow
    keeps only the latest one's URL and digest. Submissions recorded before the content moved
    out of the workflow still carry it in the state and stay as they are."""
    query = (
        select(TimelineEvent.kind, TimelineEvent.data)
        .where(
            TimelineEvent.campaign_id == campaign["id"],
            TimelineEvent.source == campaign["id"],
            TimelineEvent.kind.in_(("deliverable.submitted", "deliverable.changes_requested")),
        )
        .order_by(TimelineEvent.seq)
    )
    recorded: dict[int, list[dict[str, Any]]] = {}
    for kind, data in (await session.exec(query)).all():
        submissions = recorded.setdefault(data["index"], [])
        if kind == "deliverable.submitted" and "submission" in data:
            submissions.append({**data["submission"], "change_request": None})
        elif kind == "deliverable.changes_requested" and submissions:
            submissions[-1]["change_request"] = data.get("reason")
    for deliverable in campaign["deliverables"]:
        moved = recorded.get(deliverable["index"])
        if moved:
            older = [s for s in deliverable["submissions"] if s.get("sha256") is None]
            deliverable["submissions"] = older + moved
    return campaign
