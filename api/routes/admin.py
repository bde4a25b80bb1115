"""Operator actions (admin token): restoring a campaign the engine ended; reconciliation;
integration keys for metrics."""

from __future__ import annotations

import asyncio
import secrets
import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from api.auth import AdminPrincipal, hash_api_key, new_integration_key
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.routes.campaigns import workflow_id
from api.temporal import query_state
from db.models import CampaignRecord, IntegrationKey, ReconciliationReport, as_utc, utcnow
from domain.contract import rfc3339
from domain.dispute import DisputeResult
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow
from workflows.reconciliation import ReconciliationWorkflow

router = APIRouter(prefix="/v1/admin", tags=["admin"])

# How a workflow ends without its business path: the cases a restore is for.
ENDED_BY_THE_ENGINE = {
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.CANCELED,
}


class Restored(BaseModel):
    campaign_id: str
    run_id: str
    restored_from_event: int
    dispute_result_delivered: bool


@router.post("/campaigns/{campaign_id}/restore", response_model=Restored)
async def restore_campaign(
    campaign_id: str,
    _: AdminPrincipal,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
) -> Restored:
    """Brings back a campaign that was terminated (or failed, timed out, cancelled) at the
    engine level: a Temporal reset to its last completed workflow task, so the new run
    rebuilds the state from the history itself. Money steps the old run had scheduled but
    not recorded run again under the same ledger keys, which the ledger answers with the
    movement already made — nothing moves twice. A dispute that ended while the campaign
    was down could not report to it; its result is handed over here."""
    if await session.get(CampaignRecord, campaign_id) is None:
        raise ProblemError(404, "not_found", "No such campaign")
    handle = temporal.get_workflow_handle(workflow_id(campaign_id))
    described = await handle.describe()
    if described.status not in ENDED_BY_THE_ENGINE:
        raise ProblemError(
            409,
            "invalid_state",
            f"the campaign's workflow is {described.status.name.lower()}: nothing to restore",
        )
    history = await handle.fetch_history()
    last_task = max(
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    reset = await temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=described.run_id),
            reason=f"restored by the admin after {described.status.name.lower()}",
            workflow_task_finish_event_id=last_task,
            request_id=request.headers.get("idempotency-key") or uuid.uuid4().hex,
        )
    )
    delivered = await _deliver_ended_dispute(temporal, campaign_id)
    return Restored(
        campaign_id=campaign_id,
        run_id=reset.run_id,
        restored_from_event=last_task,
        dispute_result_delivered=delivered,
    )


async def _deliver_ended_dispute(temporal, campaign_id: str) -> bool:
    state = await query_state(temporal, workflow_id(campaign_id), CampaignWorkflow.state)
    if not state or not state.get("dispute_id"):
        return False
    dispute = temporal.get_workflow_handle_for(
        DisputeWorkflow.run, f"dispute-{state['dispute_id']}"
    )
    status = (await dispute.describe()).status
    if status == WorkflowExecutionStatus.RUNNING:
        return False  # it reports when it ends: it signals the campaign by id
    try:
        result = await dispute.result()
    except WorkflowFailureError:
        # Ended without a decision: as after a withdrawal, the deliverables resume.
        result = DisputeResult(dispute_id=state["dispute_id"], outcome=None)
    await temporal.get_workflow_handle(workflow_id(campaign_id)).signal(
        CampaignWorkflow.dispute_decided, result
    )
    return True


class ReconciliationReportView(BaseModel):
    id: int
    campaigns_checked: int
    legs_checked: int
    findings: list[dict]
    created_at: str

    @classmethod
    def of(cls, report: ReconciliationReport) -> ReconciliationReportView:
        return cls(
            id=report.id or 0,
            campaigns_checked=report.campaigns_checked,
            legs_checked=report.legs_checked,
            findings=report.findings,
            created_at=rfc3339(as_utc(report.created_at)),
        )


@router.get("/reconciliation", response_model=ReconciliationReportView)
async def latest_reconciliation(_: AdminPrincipal, session: SessionDep) -> ReconciliationReportView:
    """The last sweep's report (the Schedule runs one every `reconciliation_every_minutes`)."""
    query = select(ReconciliationReport).order_by(ReconciliationReport.id.desc()).limit(1)
    report = (await session.exec(query)).first()
    if report is None:
        raise ProblemError(404, "not_found", "No reconciliation has run yet")
    return ReconciliationReportView.of(report)


@router.post("/reconciliation", response_model=ReconciliationReportView)
async def reconcile_now(
    _: AdminPrincipal, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> ReconciliationReportView:
    """Runs a sweep now and answers its report (at most a minute; 503 after)."""
    handle = await temporal.start_workflow(
        ReconciliationWorkflow.run,
        id=f"reconciliation-now-{uuid.uuid4().hex[:12]}",
        task_queue=settings.task_queue,
    )
    try:
        async with asyncio.timeout(60):
            summary = await handle.result()
    except TimeoutError:
        raise ProblemError(503, "reconciliation_running", "The sweep is still running") from None
    report = await session.get(ReconciliationReport, summary.report_id)
    return ReconciliationReportView.of(report)


# --- integration keys (issue #15): who may post metric snapshots -------------------------

integrations = APIRouter(prefix="/v1/integrations", tags=["admin"])


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class Integration(BaseModel):
    id: str
    name: str
    created_at: str
    revoked_at: str | None = None

    @classmethod
    def of(cls, key: IntegrationKey) -> Integration:
        return cls(
            id=key.id,
            name=key.label,
            created_at=rfc3339(as_utc(key.created_at)),
            revoked_at=rfc3339(as_utc(key.revoked_at)) if key.revoked_at else None,
        )


class IntegrationCreated(Integration):
    api_key: str  # shown once; only its digest is stored


@integrations.post("", status_code=201, response_model=IntegrationCreated, name="create")
async def create_integration(
    body: IntegrationCreate, _: AdminPrincipal, response: Response, session: SessionDep
) -> IntegrationCreated:
    """Issues an integration key (`Authorization: Bearer pik_…` on
    `POST /v1/campaigns/{id}/deliverables/{n}/metrics`), shown once."""
    api_key = new_integration_key()
    key = IntegrationKey(
        id="int_" + secrets.token_hex(8), key_hash=hash_api_key(api_key), label=body.name
    )
    session.add(key)
    await session.commit()
    response.headers["Location"] = f"/v1/integrations/{key.id}"
    return IntegrationCreated(**Integration.of(key).model_dump(), api_key=api_key)


async def _integration(session, integration_id: str) -> IntegrationKey:
    key = await session.get(IntegrationKey, integration_id)
    if key is None:
        raise ProblemError(404, "not_found", "No such integration")
    return key


@integrations.get("/{integration_id}", response_model=Integration, name="get")
async def get_integration(integration_id: str, _: AdminPrincipal, session: SessionDep):
    return Integration.of(await _integration(session, integration_id))


@integrations.post("/{integration_id}/revoke", response_model=Integration, name="revoke")
async def revoke_integration(integration_id: str, _: AdminPrincipal, session: SessionDep):
    """Its key is refused from now on (401); revoking twice keeps the first time."""
    key = await _integration(session, integration_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.commit()
    return Integration.of(key)
