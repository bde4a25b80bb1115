"""DeliverNotifications (`deliver-{source}-{seq}`): one recorded event's emails and webhooks.

Started by the records activity when something must go out; it retries the delivery with
backoff for about a day. The activity sends each channel at most once successfully, so a
retry reaches only the receivers that failed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from domain.notifications import (
        DELIVER_WORKFLOW,
        FIRST_RETRY,
        LONGEST_RETRY,
        MAX_DELIVERY_ATTEMPTS,
    )


@workflow.defn(name=DELIVER_WORKFLOW)
class DeliverNotifications:
    @workflow.run
    async def run(self, event_key: str) -> None:
        await workflow.execute_activity_method(
            NotificationActivities.deliver_notifications,
            event_key,
            # Channels go out one by one (each bounded at 10 s), so an event sent to every
            # mediator may take minutes: progress is heartbeated, a stuck attempt is retried.
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                initial_interval=FIRST_RETRY,
                backoff_coefficient=2,
                maximum_interval=LONGEST_RETRY,
                maximum_attempts=MAX_DELIVERY_ATTEMPTS,
            ),
        )
