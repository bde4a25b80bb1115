"""What the workflows hand to the records activity: read model, timeline, inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.campaign import Review

RECORD_CAMPAIGN_CHANGE = "record_campaign_change"
RECORD_DISPUTE_CHANGE = "record_dispute_change"

# Inbox wording per event kind; events not listed get a generic line.
NOTIFICATION_TITLES: dict[str, str] = {
    "campaign.created": "New campaign offer",
    "campaign.accepted": "Campaign accepted: fund it to start",
    "campaign.declined": "Campaign declined",
    "campaign.expired": "Campaign expired",
    "campaign.funding_failed": "Funding failed: payment declined",
    "campaign.funded": "Campaign funded: work can start",
    "campaign.cancellation_requested": "Cancellation requested: confirm or it confirms itself",
    "campaign.cancelled": "Campaign cancelled",
    "campaign.completed": "Campaign completed: reviews are open",
    "campaign.frozen": "Campaign frozen: the funding charge is disputed",
    "campaign.unfrozen": "Campaign unfrozen",
    "campaign.reviews_closed": "Review period closed: reviews are visible",
    "review.submitted": "A review was posted",
    "deliverable.submitted": "Deliverable submitted for review",
    "deliverable.changes_requested": "Changes requested on a deliverable",
    "deliverable.approved": "Deliverable approved",
    "deliverable.auto_approved": "Deliverable approved automatically (review window passed)",
    "deliverable.released": "Deliverable paid out",
    "deliverable.overdue": "Deliverable overdue",
    "deliverable.refunded": "Deliverable refunded",
    "deliverable.settled": "Disputed deliverable settled",
    "dispute.filed": "Dispute filed: respond before the deadline",
    "dispute.responded": "Dispute answered: negotiation is open",
    "dispute.offer_made": "New settlement offer",
    "dispute.escalated": "Dispute escalated to mediation",
    "dispute.evidence_added": "New evidence in the dispute",
    "dispute.mediator_assigned": "A mediator took the dispute",
    "dispute.evidence_requested": "The mediator asks for evidence",
    "dispute.settlement_proposed": "The mediator proposed a settlement: accept or reject",
    "dispute.proposal_accepted": "Proposal accepted by one side",
    "dispute.proposal_rejected": "Proposal rejected: the dispute goes to arbitration",
    "dispute.mediator_overdue": "Mediator overdue on a dispute",
    "dispute.resolved": "Dispute resolved",
    "dispute.withdrawn": "Dispute withdrawn",
    # Reminders, one per deadline that someone must act before (SPEC §3).
    "reminder.acceptance": "Reminder: accept or decline the campaign before it expires",
    "reminder.funding": "Reminder: fund the campaign before it expires",
    "reminder.delivery": "Reminder: a deliverable is due soon",
    "reminder.review": "Reminder: review the submitted deliverable (it approves itself after)",
    "reminder.cancellation": "Reminder: the requested cancellation confirms itself soon",
    "reminder.reviews": "Reminder: the review period closes soon",
    "reminder.response": "Reminder: respond to the dispute (the claim stands otherwise)",
    "reminder.negotiation": "Reminder: negotiation closes soon, then mediation starts",
    "reminder.mediation": "Reminder: the mediation deadline is near",
    "reminder.proposal": "Reminder: accept or reject the proposal (silence accepts)",
    "reminder.arbitration": "Reminder: the binding ruling is due soon",
}


def notification_title(kind: str, campaign_title: str) -> str:
    text = NOTIFICATION_TITLES.get(kind) or kind.replace(".", ": ").replace("_", " ")
    return f"{text} — {campaign_title}"


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    kind: str
    actor: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CampaignChange(BaseModel):
    """One state change: the new snapshot, its timeline entry, and who to tell."""

    campaign_id: str
    version: int
    status: str
    title: str
    brand_id: str
    creator_id: str
    agency_id: str | None = None
    snapshot: dict[str, Any]
    event: TimelineEntry
    notify: list[str] = Field(default_factory=list)
    # Everyone of these roles is told too (e.g. all mediators, who are not on the campaign).
    notify_roles: list[str] = Field(default_factory=list)
    # Kept out of the public snapshot: the read model shows them once visible (double-blind).
    reviews: list[Review] = Field(default_factory=list)
    reviews_visible: bool = False


class DisputeChange(BaseModel):
    dispute_id: str
    campaign_id: str
    version: int
    stage: str
    mediator_id: str | None = None
    brand_id: str
    creator_id: str
    agency_id: str | None = None
    title: str
    snapshot: dict[str, Any]
    event: TimelineEntry
    notify: list[str] = Field(default_factory=list)
    notify_roles: list[str] = Field(default_factory=list)
