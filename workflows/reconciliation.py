"""The reconciliation sweep as a workflow, run by a Temporal Schedule (worker.py)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import ReconciliationActivities, ReconciliationSummary

SCHEDULE_ID = "parley-reconciliation"


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self) -> ReconciliationSummary:
        return await workflow.execute_activity_method(
            ReconciliationActivities.reconcile,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
