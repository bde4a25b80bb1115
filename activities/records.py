"""Read models written from workflow events: campaign list rows, timeline, in-app inbox.

Idempotent by construction: the timeline is unique per (campaign, seq), notifications per
(event, party), and a snapshot only replaces an older version — so retries and reordered
deliveries leave the same rows.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel, select
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.models import (
    CampaignRecord,
    DisputeRecord,
    EvidenceText,
    Notification,
    Party,
    ReviewRecord,
    TimelineEvent,
    utcnow,
)
from domain.dispute import MEDIATED, TEXT_KINDS
from domain.notifications import DELIVER_WORKFLOW, PENDING, delivery_workflow_id
from domain.records import (
    RECORD_CAMPAIGN_CHANGE,
    RECORD_DISPUTE_CHANGE,
    CampaignChange,
    DisputeChange,
    notification_title,
)


class RecordActivities:
    def __init__(self, settings, sessionmaker) -> None:
        self.sessionmaker = sessionmaker
        self.email = bool(settings.smtp_url)

    # Reads first, writes last and few: SQLite holds its one write lock from a transaction's
    # first write to its commit, so a write lock held across many round trips (each waiting
    # for a busy event loop) stalls every other writer (issue #13).

    @activity.defn(name=RECORD_CAMPAIGN_CHANGE)
    async def record_campaign_change(self, change: CampaignChange) -> None:
        async with self.sessionmaker() as session:
            record = await session.get(CampaignRecord, change.campaign_id) or CampaignRecord(
                id=change.campaign_id,
                status=change.status,
                title=change.title,
                brand_id=change.brand_id,
                creator_id=change.creator_id,
                agency_id=change.agency_id,
                created_at=change.event.at,
            )
            event, notifications, outbound = await self._event_rows(
                session, change.campaign_id, change.campaign_id, None, change, change.status
            )
            # The resource as the API serves it: the workflow's snapshot with every
            # submission's notes and metrics, which live on the timeline (this event too).
            snapshot = await with_submissions(session, change.snapshot, event)
            change = change.model_copy(update={"snapshot": snapshot})
            await _insert_new(session, [event])
            await _insert_new(session, notifications)
            if _apply_if_newer(session, record, change, status=change.status):
                await _record_reviews(session, change)
            await session.commit()
        if outbound:
            await self._hand_off(event.source, event.seq)

    @activity.defn(name=RECORD_DISPUTE_CHANGE)
    async def record_dispute_change(self, change: DisputeChange) -> None:
        async with self.sessionmaker() as session:
            record = await session.get(DisputeRecord, change.dispute_id) or DisputeRecord(
                id=change.dispute_id,
                campaign_id=change.campaign_id,
                stage=change.stage,
                brand_id=change.brand_id,
                creator_id=change.creator_id,
                agency_id=change.agency_id,
                created_at=change.event.at,
            )
            # The dispute as the API serves it (lists, and reads once the workflow has ended):
            # the workflow's snapshot with its evidence texts, which live in the database.
            snapshot = await with_evidence_text(session, change.snapshot)
            change = change.model_copy(update={"snapshot": snapshot})
            event, notifications, outbound = await self._event_rows(
                session,
                change.campaign_id,
                change.dispute_id,
                change.dispute_id,
                change,
                change.stage,
            )
            _apply_if_newer(
                session,
                record,
                change,
                stage=change.stage,
                mediator_id=change.mediator_id,
                mediated=record.mediated or change.stage in MEDIATED,
            )
            await _insert_new(session, [event])
            await _insert_new(session, notifications)
            await session.commit()
        if outbound:
            await self._hand_off(event.source, event.seq)

    async def _event_rows(
        self, session, campaign_id, source, dispute_id, change, status: str
    ) -> tuple[TimelineEvent, list[Notification], bool]:
        """The timeline entry and one inbox notification per recipient, with the outbound
        channels that apply to each recipient marked pending; and whether any channel applies
        (the same answer on a retry, whose rows already exist and are left as they are)."""
        event = change.event
        timeline = TimelineEvent(
            campaign_id=campaign_id,
            source=source,
            seq=event.seq,
            at=event.at,
            kind=event.kind,
            actor=event.actor,
            data=event.data,
        )
        recipients = list(change.notify)
        if change.notify_roles:
            query = select(Party.id).where(Party.role.in_(change.notify_roles))
            recipients += [p for p in (await session.exec(query)).all() if p not in recipients]
        query = select(Party.id, Party.webhook_url).where(Party.id.in_(recipients))
        webhook_urls = dict((await session.exec(query)).all())  # of known parties
        outbound = False
        notifications = []
        for party_id in recipients:
            email = party_id in webhook_urls and self.email
            webhook = bool(webhook_urls.get(party_id))
            outbound = outbound or email or webhook
            notifications.append(
                Notification(
                    id="ntf_" + secrets.token_hex(8),
                    event_key=f"{source}:{event.seq}",
                    party_id=party_id,
                    campaign_id=campaign_id,
                    dispute_id=dispute_id,
                    kind=event.kind,
                    title=notification_title(event.kind, change.title),
                    data={**event.data, "status": status},
                    created_at=event.at,
                    email_state=PENDING if email else None,
                    webhook_state=PENDING if webhook else None,
                )
            )
        return timeline, notifications, outbound

    async def _hand_off(self, source: str, seq: int) -> None:
        """Starts the event's delivery workflow: an email or webhook waits to go out.

        A workflow of its own rather than an activity of the campaign's or dispute's: it adds
        nothing to their histories, outlives a dispute that has ended, and a receiver that is
        down never holds up their deadlines or settlement. The id makes it once per event: a
        retried record finds it started (or finished: duplicates are rejected).
        """
        event_key = f"{source}:{seq}"
        try:
            await activity.client().start_workflow(
                DELIVER_WORKFLOW,
                event_key,
                id=delivery_workflow_id(event_key),
                task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass


async def with_submissions(
    session, campaign: dict[str, Any], pending: TimelineEvent | None = None
) -> dict[str, Any]:
    """Every submission of every deliverable, from the campaign's timeline (and `pending`,
    the entry about to be written): the workflow keeps only the latest one's URL and digest.
    Submissions recorded before the content moved out of the workflow still carry it in the
    state and stay as they are."""
    kinds = ("deliverable.submitted", "deliverable.changes_requested")
    query = (
        select(TimelineEvent.seq, TimelineEvent.kind, TimelineEvent.data)
        .where(
            TimelineEvent.campaign_id == campaign["id"],
            TimelineEvent.source == campaign["id"],
            TimelineEvent.kind.in_(kinds),
        )
        .order_by(TimelineEvent.seq)
    )
    entries = list((await session.exec(query)).all())
    if (
        pending is not None
        and pending.source == campaign["id"]
        and pending.kind in kinds
        and all(seq != pending.seq for seq, _, _ in entries)
    ):
        entries.append((pending.seq, pending.kind, pending.data))
    recorded: dict[int, list[dict[str, Any]]] = {}
    for _, kind, data in sorted(entries, key=lambda entry: entry[0]):
        submissions = recorded.setdefault(data["index"], [])
        if kind == "deliverable.submitted" and "submission" in data:
            submissions.append({**data["submission"], "change_request": None})
        elif kind == "deliverable.changes_requested" and submissions:
            submissions[-1]["change_request"] = data.get("reason")
    if not recorded:
        return campaign
    campaign = {**campaign, "deliverables": [dict(d) for d in campaign["deliverables"]]}
    for deliverable in campaign["deliverables"]:
        moved = recorded.get(deliverable["index"])
        if moved:
            older = [s for s in deliverable["submissions"] if s.get("sha256") is None]
            deliverable["submissions"] = older + moved
    return campaign


async def with_evidence_text(session, dispute: dict[str, Any]) -> dict[str, Any]:
    """A dispute (state or snapshot) with each text and quoted message back in its evidence,
    from `evidence_text` by sha256: the workflow holds only the digest. Items that carry
    their text (recorded before it moved out, or already filled in) stay as they are."""
    evidence = dispute.get("evidence") or []
    missing = {
        item["sha256"]
        for item in evidence
        if item.get("kind") in TEXT_KINDS and item.get("text") is None
    }
    if not missing:
        return dispute
    query = select(EvidenceText.sha256, EvidenceText.text).where(EvidenceText.sha256.in_(missing))
    texts = dict((await session.exec(query)).all())
    return {
        **dispute,
        "evidence": [
            {**item, "text": texts[item["sha256"]]}
            if item.get("text") is None
            and item["sha256"] in texts
            and item.get("kind") in TEXT_KINDS
            else item
            for item in evidence
        ],
    }


def _apply_if_newer(session, record, change, **fields) -> bool:
    """A snapshot replaces only an older one: retries and reordering never go back in time."""
    if change.version <= record.version:
        return False
    for name, value in {**fields, "version": change.version, "snapshot": change.snapshot}.items():
        setattr(record, name, value)
    record.updated_at = utcnow()
    session.add(record)
    return True


async def _record_reviews(session, change: CampaignChange) -> None:
    """Reviews written once each; visible as the newest change says (double-blind)."""
    await _insert_new(
        session,
        [
            ReviewRecord(
                campaign_id=change.campaign_id,
                side=review.side,
                reviewer_id=review.by,
                subject_id=review.subject_id,
                subject_agency_id=review.subject_agency_id,
                rating=review.rating,
                comment=review.comment,
                created_at=review.at,
            )
            for review in change.reviews
        ],
    )
    if change.reviews:
        await session.exec(
            update(ReviewRecord)
            .where(ReviewRecord.campaign_id == change.campaign_id)
            .values(visible=change.reviews_visible)
        )


async def _insert_new(session, rows: list[SQLModel]) -> None:
    """All of `rows` in one statement; those already written by an earlier attempt (a unique
    key taken) are skipped, as `INSERT … ON CONFLICT DO NOTHING` does on both databases."""
    if not rows:
        return
    table = type(rows[0]).__table__
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    values = [row.model_dump(exclude_none=False) for row in rows]
    for value in values:
        for column in table.primary_key.columns:
            if value.get(column.name) is None:
                value.pop(column.name, None)  # the database numbers it
    await session.exec(insert(table).values(values).on_conflict_do_nothing())
