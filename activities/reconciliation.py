"""The reconciliation sweep (issue #10): the ledger against each campaign's escrow, against
the rail's book, and against the workflows that should be holding the money. It reports;
the rules in domain/reconciliation.py say what does not add up, and an operator decides."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from pydantic import BaseModel
from sqlmodel import select
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.rails import Rail
from db.models import CampaignRecord, LedgerEntry, ReconciliationReport, as_utc, utcnow
from domain.reconciliation import (
    Finding,
    Leg,
    book_findings,
    campaign_findings,
    stale_findings,
)

MAX_FINDINGS = 500  # per report: enough to act on, bounded in the database


class ReconciliationSummary(BaseModel):
    report_id: int
    campaigns_checked: int
    legs_checked: int
    findings: int


def _leg(entry: LedgerEntry) -> Leg:
    return Leg(
        idempotency_key=entry.idempotency_key,
        campaign_id=entry.campaign_id,
        kind=entry.kind,
        amount=entry.amount,
        state=entry.state,
        rail_reference=entry.rail_reference,
        updated_at=as_utc(entry.updated_at),
    )


class ReconciliationActivities:
    def __init__(self, settings, sessionmaker, rail: Rail) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.rail = rail

    @activity.defn
    async def reconcile(self) -> ReconciliationSummary:
        now = utcnow()
        async with self.sessionmaker() as session:
            legs = [_leg(e) for e in (await session.exec(select(LedgerEntry))).all()]
            records = (await session.exec(select(CampaignRecord))).all()
        quiet = timedelta(seconds=self.settings.reconciliation_quiet_seconds)
        by_campaign: dict[str, list[Leg]] = {}
        for leg in legs:
            by_campaign.setdefault(leg.campaign_id, []).append(leg)

        findings: list[Finding] = stale_findings(legs, now)
        for record in records:
            activity.heartbeat()
            mine = by_campaign.get(record.id, [])
            escrow = (record.snapshot or {}).get("escrow", {})
            if now - as_utc(record.updated_at) < quiet:
                continue  # mid-movement, or the rail's search not yet caught up
            if mine:  # a leg in flight is known to the ledger: the book still compares
                findings += await self._against_the_rail(record.id, mine)
            if any(leg.state == "pending" for leg in mine):
                continue  # the escrow waits for the leg's answer
            findings += campaign_findings(record.id, escrow, mine)
            if escrow.get("held"):
                findings += await self._holder_gone(record.id, escrow["held"])

        async with self.sessionmaker() as session:
            report = ReconciliationReport(
                campaigns_checked=len(records),
                legs_checked=len(legs),
                findings=[asdict(f) for f in findings[:MAX_FINDINGS]],
            )
            session.add(report)
            await session.commit()
            await session.refresh(report)
        return ReconciliationSummary(
            report_id=report.id or 0,
            campaigns_checked=len(records),
            legs_checked=len(legs),
            findings=len(findings),
        )

    async def _against_the_rail(self, campaign_id: str, legs: list[Leg]) -> list[Finding]:
        """The campaign's legs against the rail's own book (Stripe: looked up by transfer
        group, charge and metadata), so a movement the ledger does not know, or one made
        twice, is found whatever the ledger says."""
        charge = next((leg.rail_reference for leg in legs if leg.kind == "fund"), None)
        try:
            book = await self.rail.book(campaign_id, charge)
        except Exception as err:  # one campaign's lookup failing does not stop the sweep
            return [Finding(campaign_id, f"could not read the rail's book: {err}"[:300])]
        return book_findings(legs, book)

    async def _holder_gone(self, campaign_id: str, held: int) -> list[Finding]:
        """Money held for a campaign whose workflow no longer runs: nothing will move it."""
        handle = activity.client().get_workflow_handle(f"campaign-{campaign_id}")
        try:
            status = (await handle.describe()).status
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            status = None
        if status == WorkflowExecutionStatus.RUNNING:
            return []
        ended = status.name.lower() if status else "missing"
        return [Finding(campaign_id, f"holds {held} but its workflow is {ended}")]
