"""Metric snapshots from integrations (issue #15, SPEC §9).

`POST /v1/campaigns/{id}/deliverables/{n}/metrics` with an integration key
(`Authorization: Bearer pik_…`, issued by the admin: `POST /v1/integrations`). The snapshot
is stored in the database first; the campaign workflow is then told only the compact summary
(the contracted metrics' figures, reachable, the snapshot's id and sha256) by the
`report_metrics` Update. A creator's submission `metrics` never reaches the proof: only
providers and integration keys write snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from activities.metrics import store_snapshot
from api.auth import CurrentIntegration
from api.deps import SessionDep, TemporalDep
from api.errors import ProblemError
from api.routes.campaigns import workflow_id
from api.temporal import send_update
from db.models import CampaignRecord
from domain.contract import rfc3339
from domain.proof import MAX_TARGET, Metric
from workflows.campaign import CampaignWorkflow

router = APIRouter(prefix="/v1/campaigns", tags=["metrics"])

Count = Annotated[StrictInt, Field(ge=0, le=MAX_TARGET)]


class MetricsReport(BaseModel):
    """Counts of the post (only the contracted metric names), when they were observed, and
    whether the post still answers (false: taken down)."""

    model_config = ConfigDict(extra="forbid")

    metrics: dict[Metric, Count] = Field(default_factory=dict, max_length=len(Metric))
    observed_at: datetime | None = None
    reachable: bool = True


class MetricSnapshotView(BaseModel):
    id: int
    campaign_id: str
    deliverable: int
    source: str
    taken_at: str
    figures: dict[str, int]
    reachable: bool
    sha256: str


@router.post(
    "/{campaign_id}/deliverables/{n}/metrics",
    status_code=202,
    response_model=MetricSnapshotView,
    name="report",
)
async def report_metrics(
    campaign_id: str,
    n: Annotated[int, Path(ge=0, le=1000)],
    body: MetricsReport,
    integration: CurrentIntegration,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
) -> MetricSnapshotView:
    """Stores the snapshot and tells the campaign (202: the workflow has taken it in)."""
    record = await session.get(CampaignRecord, campaign_id)
    if record is None:
        raise ProblemError(404, "not_found", "No such campaign")
    items = record.snapshot.get("deliverables", [])
    if n >= len(items):
        raise ProblemError(404, "not_found", f"No deliverable {n}")
    tracking = items[n].get("tracking")
    if items[n].get("status") != "approved" or not tracking or tracking.get("release") is not None:
        raise ProblemError(409, "invalid_state", f"deliverable {n} is not being tracked")
    if body.observed_at is not None and body.observed_at.tzinfo is None:
        raise ProblemError(422, "validation_error", "observed_at: needs a timezone (RFC 3339)")
    seen = await store_snapshot(
        session,
        campaign_id=campaign_id,
        index=n,
        source=f"integration:{integration.id}",
        reachable=body.reachable,
        counts={m.value: v for m, v in body.metrics.items()},
        taken_at=body.observed_at or datetime.now(UTC),
    )
    await session.commit()
    await send_update(
        temporal, workflow_id(campaign_id), CampaignWorkflow.report_metrics, seen, request=request
    )
    return _view(campaign_id, seen)


def _view(campaign_id: str, seen: Any) -> MetricSnapshotView:
    return MetricSnapshotView(
        id=seen.snapshot_id,
        campaign_id=campaign_id,
        deliverable=seen.index,
        source=seen.source,
        taken_at=rfc3339(seen.taken_at),
        figures={m.value: v for m, v in seen.figures.items()},
        reachable=seen.reachable,
        sha256=seen.sha256,
    )
