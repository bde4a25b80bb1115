"""The campaign invariant the workflow checks after every change (issue: no stranded states)."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.campaign import (
    CampaignStatus,
    DeliverableSpec,
    DeliverableStatus,
    NewCampaign,
    PayoutLeg,
    open_campaign,
)
from domain.terms import Terms

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _campaign(*amounts: int):
    new = NewCampaign(
        id="cmp_1",
        brand_id="pty_b",
        creator_id="pty_c",
        title="t",
        brief="",
        currency="eur",
        deliverables=[DeliverableSpec(title=f"d{i}", amount=a) for i, a in enumerate(amounts)],
        terms=Terms(),
        created_by="pty_b",
    )
    return open_campaign(new, NOW)


def test_a_fresh_and_a_funded_campaign_hold_the_invariant():
    state = _campaign(10_000, 5_000)
    assert state.invariant_violations() == [] and state.stranded() == []
    state.escrow = state.escrow.fund(15_000)
    state.phase = CampaignStatus.ACTIVE
    assert state.invariant_violations() == [] and state.stranded() == []


def test_money_moved_without_its_deliverable_is_a_violation():
    state = _campaign(10_000, 5_000)
    state.escrow = state.escrow.fund(15_000).refund(5_000)  # deliverable 1 still pending
    assert state.invariant_violations() == [
        "held 10000 but open deliverables and owed payouts hold 15000"
    ]
    state.deliverables[1].status = DeliverableStatus.REFUNDED
    assert state.invariant_violations() == []


def test_an_owed_payout_is_held_money():
    state = _campaign(10_000, 5_000)
    state.escrow = state.escrow.fund(15_000)
    state.deliverables[1].status = DeliverableStatus.REFUNDED  # the refund was refused
    assert state.invariant_violations() == [
        "held 15000 but open deliverables and owed payouts hold 10000"
    ]
    state.owed_payouts.append(PayoutLeg(kind="refund", key="cmp_x:refund:1", amount=5_000))
    assert state.invariant_violations() == []


def test_a_pending_deliverable_in_a_cancelled_campaign_is_stranded():
    state = _campaign(10_000, 5_000)
    state.escrow = state.escrow.fund(15_000).refund(5_000)
    state.deliverables[1].status = DeliverableStatus.REFUNDED
    state.phase = CampaignStatus.CANCELLED
    assert state.stranded() == ["deliverable 0 is pending in a cancelled campaign"]
    # Approved work still clears and releases after a cancellation: not stranded.
    state.deliverables[0].status = DeliverableStatus.APPROVED
    assert state.stranded() == []
    state.phase = CampaignStatus.COMPLETED
    assert state.stranded() == ["deliverable 0 is approved in a completed campaign"]
