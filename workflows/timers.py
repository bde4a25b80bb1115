"""The deadline loop both workflows share: one durable timer, re-armed only when it moves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


async def sleep_until_due(
    next_wake: Callable[[], datetime | None], woken: Callable[[], bool]
) -> None:
    """Sleeps until the next deadline or reminder is due, or until an Update moves it or
    `woken()` holds. A new timer per action would double the history, so offers, evidence
    and other changes that leave the deadline alone do not wake it."""
    wake = next_wake()
    wait = None if wake is None else wake - workflow.now()
    if wait is not None and wait <= timedelta(0):
        return
    try:
        await workflow.wait_condition(lambda: next_wake() != wake or woken(), timeout=wait)
    except TimeoutError:
        pass
