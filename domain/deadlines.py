"""Deadlines and their reminders, shared by the campaign and dispute workflows (SPEC §3).

A workflow lists the deadlines that are running now, each with who must act before it.
The earliest one is its next timer; each one's reminder is a second timer, 24 h before it
(or at half its window when shorter). A deadline that stops running (the step was done) is
no longer listed, so its reminder can never fire late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.contract import rfc3339
from domain.terms import reminder_offset


@dataclass(frozen=True)
class Deadline:
    step: str  # what is due: "acceptance", "funding", "review", … (the reminder's kind)
    at: datetime
    window: timedelta  # the window this deadline closes: it sets when the reminder fires
    to: tuple[str, ...] = ()  # who must act: sides ("brand", "creator") or "mediator"
    index: int | None = None  # the deliverable, for per-deliverable deadlines

    @property
    def remind_at(self) -> datetime:
        return self.at - reminder_offset(self.window)

    @property
    def reminder_key(self) -> str:
        """One reminder per deadline instance: a new review window reminds again."""
        where = "" if self.index is None else f":{self.index}"
        return f"{self.step}{where}@{self.at.isoformat()}"


def earliest(deadlines: list[Deadline]) -> datetime | None:
    return min((d.at for d in deadlines), default=None)


def reminders_pending(deadlines: list[Deadline], sent: list[str]) -> list[Deadline]:
    """Deadlines that someone must act on and that were not reminded about yet."""
    return [d for d in deadlines if d.to and d.reminder_key not in sent]


def next_wake(deadlines: list[Deadline], sent: list[str]) -> datetime | None:
    """The next moment a workflow has something to do: a deadline or a reminder."""
    times = [d.at for d in deadlines] + [d.remind_at for d in reminders_pending(deadlines, sent)]
    return min(times, default=None)


def take_due_reminders(
    deadlines: list[Deadline], sent: list[str], now: datetime
) -> tuple[list[str], list[Deadline]]:
    """The reminders due now, and the sent keys to keep: those of deadlines still running
    (a done step's key can never come back) plus the ones due now."""
    running = {d.reminder_key for d in deadlines}
    kept = [k for k in sent if k in running]
    due = [d for d in reminders_pending(deadlines, kept) if d.remind_at <= now]
    return kept + [d.reminder_key for d in due], due


def reminder_data(due: Deadline) -> dict:
    """What a reminder tells: which step, and when its deadline passes."""
    data = {"step": due.step, "deadline": rfc3339(due.at)}
    return data if due.index is None else {**data, "index": due.index}
