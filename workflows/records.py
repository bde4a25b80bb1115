"""Recording a state change from a workflow: read model, timeline and inbox in one write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

RECORD_TIMEOUT = timedelta(seconds=10)
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


async def record(activity: Callable[..., Awaitable[None]], change: BaseModel) -> None:
    """A `RecordActivities` method as a local activity: one marker in history instead of
    three events carrying the whole snapshot; it is a short idempotent write, which is what
    local activities suit."""
    await workflow.execute_local_activity_method(
        activity, change, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
    )
