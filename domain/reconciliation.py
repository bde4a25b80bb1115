"""Reconciliation (issue #10): the ledger against each campaign's escrow and against the
rail's book. Pure: the activity gathers the rows, these rules say what does not add up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Kinds of ledger legs and the escrow term each one moves.
ESCROW_TERM = {
    "fund": "funded",
    "refund": "refunded_to_brand",
    "chargeback": "charged_back",
}
PAID_OUT = ("release", "commission", "fee")  # together: released + commission + fee
# A leg whose rail call has not been answered for this long needs a look.
STALE_AFTER = timedelta(minutes=15)
SETTLING_TOO_LONG = timedelta(days=7)  # a bank debit settles in days, not weeks


@dataclass(frozen=True)
class Leg:
    idempotency_key: str
    campaign_id: str
    kind: str
    amount: int
    state: str
    rail_reference: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Booked:
    """One movement in the rail's own book."""

    idempotency_key: str
    kind: str
    amount: int


@dataclass(frozen=True)
class Finding:
    campaign_id: str
    problem: str
    idempotency_key: str | None = None


def campaign_findings(campaign_id: str, escrow: dict, legs: Iterable[Leg]) -> list[Finding]:
    """Succeeded legs must add up to the campaign's escrow, term by term."""
    done = [leg for leg in legs if leg.state == "succeeded"]
    found: list[Finding] = []
    for kind, term in ESCROW_TERM.items():
        booked = sum(leg.amount for leg in done if leg.kind == kind)
        expected = escrow.get(term, 0)
        if kind == "chargeback":
            # The network may take back more than escrow still held: the rest is the
            # platform's loss, so the ledger holds at least the escrow's share.
            if booked < expected:
                found.append(Finding(campaign_id, f"chargebacks {booked} < escrow {expected}"))
        elif booked != expected:
            found.append(Finding(campaign_id, f"{kind} legs {booked} != escrow {term} {expected}"))
    paid = sum(leg.amount for leg in done if leg.kind in PAID_OUT)
    expected = sum(
        escrow.get(t, 0) for t in ("released_to_creator", "agency_commission", "platform_fee")
    )
    if paid != expected:
        found.append(Finding(campaign_id, f"paid-out legs {paid} != escrow paid out {expected}"))
    return found


def stale_findings(legs: Iterable[Leg], now: datetime) -> list[Finding]:
    """Legs whose outcome nobody has seen for too long."""
    found = []
    for leg in legs:
        age = now - leg.updated_at
        minutes = int(age.total_seconds() // 60)
        if leg.state == "pending" and age > STALE_AFTER:
            problem = f"{leg.kind} unanswered for {minutes} min"
            found.append(Finding(leg.campaign_id, problem, leg.idempotency_key))
        elif leg.state == "settling" and age > SETTLING_TOO_LONG:
            problem = f"charge settling for {minutes // (60 * 24)} days"
            found.append(Finding(leg.campaign_id, problem, leg.idempotency_key))
    return found


def book_findings(legs: Iterable[Leg], book: Iterable[Booked]) -> list[Finding]:
    """Every leg that moved money at the rail is in its book once, for the same amount, and
    the book holds nothing the ledger does not know (a movement made twice, or orphaned)."""
    moved = {
        leg.idempotency_key: leg
        for leg in legs
        if leg.state in ("succeeded", "settling")
        and leg.kind not in ("fee", "chargeback")
        and leg.amount
    }
    entries: dict[str, Booked] = {}
    found = []
    for entry in book:
        if entry.idempotency_key in entries:  # two objects carry one key: moved twice
            campaign = entry.idempotency_key.split(":", 1)[0]
            problem = f"rail {entry.kind} {entry.amount} made twice"
            found.append(Finding(campaign, problem, entry.idempotency_key))
        entries.setdefault(entry.idempotency_key, entry)
    for key, leg in moved.items():
        entry = entries.get(key)
        if entry is None:
            found.append(Finding(leg.campaign_id, f"{leg.kind} not in the rail's book", key))
        elif entry.amount != leg.amount:
            found.append(
                Finding(leg.campaign_id, f"rail booked {entry.amount}, ledger {leg.amount}", key)
            )
    known = {leg.idempotency_key for leg in legs}
    for key, entry in entries.items():
        if key not in known:
            campaign = key.split(":", 1)[0]
            found.append(
                Finding(campaign, f"rail {entry.kind} {entry.amount} not in the ledger", key)
            )
    return found
