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
from db.models import CampaignRecord, DisputeRecord, Party
from domain.dispute import (
    MAX_CONTEXT_METRICS,
    MAX_CONTEXT_SUBMISSIONS,
    MAX_EVIDENCE_URL_CHARS,
    DisputeContext,
)
from workflows.dispute import DisputeWorkflow


async def campaign_view(request: Request, temporal: Client, campaign_id: str) -> dict[str, Any]:
    async with request.app.state.sessionmaker() as session:
        return (await session.get(CampaignRecord, campaign_id)).snapshot


async def dispute_view(request: Request, temporal: Client, dispute_id: str) -> dict[str, Any]:
    state = await query_state(temporal, f"dispute-{dispute_id}", DisputeWorkflow.state)
    async with request.app.state.sessionmaker() as session:
        if state is None:
            state = (await session.get(DisputeRecord, dispute_id)).snapshot
        return await with_evidence_text(session, state)


async def dispute_context(request: Request, campaign_id: str) -> DisputeContext:
    """What the dispute's details in the Temporal UI show beside its own state (issue #12):
    the parties' names and the disputed deliverables' latest submissions, with the numeric
    metrics at their top level. Read after the filing, so the deliverables read `disputed`."""
    async with request.app.state.sessionmaker() as session:
        campaign = (await session.get(CampaignRecord, campaign_id)).snapshot
        names = {}
        for key in ("brand_id", "creator_id", "agency_id"):
            party = await session.get(Party, campaign[key]) if campaign.get(key) else None
            if party is not None:
                names[party.id] = party.name
    submissions = []
    for item in campaign.get("deliverables", []):
        if item.get("status") != "disputed" or len(submissions) >= MAX_CONTEXT_SUBMISSIONS:
            continue
        latest = (item.get("submissions") or [None])[-1] or {}
        url = latest.get("url")
        metrics = {
            str(key)[:50]: value
            for key, value in (latest.get("metrics") or {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        submissions.append(
            {
                "index": item["index"],
                "title": str(item.get("title", ""))[:200],
                "url": url if url and len(url) <= MAX_EVIDENCE_URL_CHARS else None,
                "submitted_at": latest.get("submitted_at"),
                "metrics": dict(list(metrics.items())[:MAX_CONTEXT_METRICS]),
            }
        )
    return DisputeContext.model_validate({"names": names, "submissions": submissions})
