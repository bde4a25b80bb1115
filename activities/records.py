"""Read models written from workflow events: campaign list rows, timeline, in-app inbox.

Idempotent by construction: the timeline is unique per (campaign, seq), notifications per
(event, party), and a snapshot only replaces an older version — so retries and reordered
deliveries leave the same rows.
"""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from db.models import CampaignRecord, Notification, Party, TimelineEvent, utcnow
from domain.records import RECORD_CAMPAIGN_CHANGE, CampaignChange, notification_title


class RecordActivities:
    def __init__(self, sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name=RECORD_CAMPAIGN_CHANGE)
    async def record_campaign_change(self, change: CampaignChange) -> None:
        async with self.sessionmaker() as session:
            record = await session.get(CampaignRecord, change.campaign_id, with_for_update=True)
            if record is None:
                record = CampaignRecord(
                    id=change.campaign_id,
                    status=change.status,
                    title=change.title,
                    brand_id=change.brand_id,
                    creator_id=change.creator_id,
                    agency_id=change.agency_id,
                    created_at=change.event.at,
                )
            if change.version > record.version:
                record.version = change.version
                record.status = change.status
                record.snapshot = change.snapshot
                record.updated_at = utcnow()
                session.add(record)
            await _insert_once(
                session,
                TimelineEvent(
                    campaign_id=change.campaign_id,
                    seq=change.event.seq,
                    at=change.event.at,
                    kind=change.event.kind,
                    actor=change.event.actor,
                    data=change.event.data,
                ),
            )
            event_key = f"{change.campaign_id}:{change.event.seq}"
            recipients = list(change.notify)
            if change.notify_roles:
                query = select(Party.id).where(Party.role.in_(change.notify_roles))
                recipients += [p for p in (await session.exec(query)).all() if p not in recipients]
            for party_id in recipients:
                await _insert_once(
                    session,
                    Notification(
                        id="ntf_" + secrets.token_hex(8),
                        event_key=event_key,
                        party_id=party_id,
                        campaign_id=change.campaign_id,
                        kind=change.event.kind,
                        title=notification_title(change.event.kind, change.title),
                        data={**change.event.data, "status": change.status},
                        created_at=change.event.at,
                    ),
                )
            await session.commit()


async def _insert_once(session, row) -> None:
    """Insert in a savepoint; a duplicate from an earlier attempt is already there."""
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        pass
