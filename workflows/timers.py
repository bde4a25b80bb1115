"""The skeleton both workflows share: one durable timer re-armed only when it moves, and
the moment to continue as new."""

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


def history_is_long(limit: int) -> bool:
    """Time to continue as new: Temporal suggests it, or the history reached `limit` events
    (both read from the workflow task, so replay sees the same answer)."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit


def next_version(version: int) -> int:
    """The change number of the next recorded change: above the last one, and never below the
    workflow clock in milliseconds. A reset run replays to an earlier change and numbers what
    follows anew; starting from the clock puts those numbers above everything the discarded
    run recorded, so the read model and the timeline take them instead of ignoring them."""
    return max(version + 1, int(workflow.now().timestamp() * 1000))
