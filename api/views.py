"""Reading a campaign or a dispute after an action. Updates answer only an acknowledgement
(their answers are stored in workflow history), so the resource comes from elsewhere: a
campaign from its read model — written by the workflow's records activity before the action
completes, with each submission's notes and metrics, which live outside the workflow — and a
dispute from its `state` query (or its read model once the workflow has ended), with its
evidence texts put back from the database (the workflow holds only their sha256)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from temporalio.client import Client

from activities.records import with_evidence_text
from api.temporal import query_state
from db.models import CampaignRecord, DisputeRecord


async def campaign_view(request: Request, temporal: Client, campaign_id: str) -> dict[str, Any]:
    async with request.app.state.sessionmaker() as session:
        return (await session.get(CampaignRecord, campaign_id)).snapshot


async def dispute_view(request: Request, temporal: Client, dispute_id: str) -> dict[str, Any]:
    state = await query_state(temporal, f"dispute-{dispute_id}")
    async with request.app.state.sessionmaker() as session:
        if state is None:
            state = (await session.get(DisputeRecord, dispute_id)).snapshot
        return await with_evidence_text(session, state)
