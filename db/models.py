"""Tables. Table objects never cross a Temporal boundary: activities convert to domain models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    or_,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from domain.contract import sha256_hex
from domain.parties import Role


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; every one we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ts() -> Field:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False)


class PartyBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(sa_type=String(20))
    email: str = Field(max_length=320)
    webhook_url: str | None = Field(default=None, max_length=2000)
    stripe_account: str | None = Field(default=None, max_length=255)


class Party(PartyBase, table=True):
    id: str = Field(primary_key=True, max_length=40)
    # Only a hash of the API key is kept: a database leak does not leak credentials.
    api_key_hash: str = Field(unique=True, index=True, max_length=64)
    # The key a rotation replaced (hashed too): accepted until the grace period ends.
    previous_api_key_hash: str | None = Field(default=None, index=True, max_length=64)
    previous_api_key_expires_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True)
    )
    # Kept in clear because we must sign webhooks with it; shown to the party once.
    webhook_secret: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts()
    # Set by the admin: every key of the party is refused (its campaigns go on).
    deactivated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AgencyGrant(SQLModel, table=True):
    """A brand's or creator's authorisation for an agency to act for it (SPEC §1).

    Checked when a campaign names the agency; revoking it stops new campaigns, while a running
    one keeps the agency its signed contract names. One row per (grantor, agency): granting
    again after a revocation makes the same row live again.
    """

    __tablename__ = "agency_grant"
    __table_args__ = (UniqueConstraint("grantor_id", "agency_id"),)

    id: int | None = Field(default=None, primary_key=True)
    grantor_id: str = Field(max_length=40)  # indexed by the unique constraint
    grantor_role: Role = Field(sa_type=String(20))  # brand or creator; a party's role is fixed
    agency_id: str = Field(index=True, max_length=40)
    granted_by: str = Field(max_length=40)  # the grantor's id, or "admin"
    granted_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_by: str | None = Field(default=None, max_length=40)


class IdempotencyRecord(SQLModel, table=True):
    """One row per (caller, Idempotency-Key): the first request's fingerprint and response."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=64)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    in_flight: bool = True
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=255)
    response_body: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # The first response's Location (a 201's): replayed with the body.
    location: str | None = Field(default=None, max_length=2000)
    # The body is sealed under the caller's credential (api/idempotency.py); older rows not.
    sealed: bool = False
    created_at: datetime = _ts()
    # Part of the Update id (api/temporal.py): new with each claim, kept when a retry takes
    # over a claim whose outcome was unknown.
    token: str | None = Field(default=None, max_length=32)


class LedgerEntry(SQLModel, table=True):
    """One row per money movement, keyed by its business idempotency key.

    Written `pending` before the rail call and `succeeded`/`failed` after it, so a crash in
    between is found and finished by the retry with the same key.
    """

    __tablename__ = "ledger_entry"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)
    campaign_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=20)  # fund | release | refund
    amount: int = Field(sa_type=BigInteger)  # minor units up to MAX_AMOUNT: 64 bits
    platform_fee: int = Field(default=0, sa_type=BigInteger)
    agency_commission: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(max_length=3)
    rail: str = Field(max_length=20)
    state: str = Field(default="pending", max_length=20)  # pending | succeeded | failed
    rail_reference: str | None = Field(default=None, max_length=255)
    # A release with an agency is two transfers; this is the agency's (`{key}:agency`).
    agency_reference: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SandboxMovement(SQLModel, table=True):
    """The `sandbox` rail's own book: what a real processor would hold, keyed like Stripe's
    idempotency keys, so a retried call returns the first result instead of moving twice."""

    __tablename__ = "sandbox_movement"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=20)  # charge | transfer | refund
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    counterparty: str | None = Field(default=None, max_length=255)
    reference: str = Field(max_length=64)
    created_at: datetime = _ts()


class CampaignRecord(SQLModel, table=True):
    """Read model of a campaign for lists; the workflow's `state` query is authoritative."""

    __tablename__ = "campaign_record"

    id: str = Field(primary_key=True, max_length=40)
    status: str = Field(index=True, max_length=30)
    title: str = Field(max_length=200)
    brand_id: str = Field(index=True, max_length=40)
    creator_id: str = Field(index=True, max_length=40)
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    # Change number of the snapshot; older writes (retries, reordering) never overwrite newer.
    # Workflows number changes from their clock in ms (reset-safe), hence 64 bits.
    version: int = Field(default=0, sa_type=BigInteger)
    snapshot: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


def involving(record_model, party_id: str):
    """Rows of a read model (campaign or dispute) that name the party as brand, creator or
    agency: what a party may see, and what its reputation counts."""
    return or_(
        record_model.brand_id == party_id,
        record_model.creator_id == party_id,
        record_model.agency_id == party_id,
    )


class DisputeRecord(SQLModel, table=True):
    """Read model of a dispute for lists and visibility; the workflow is authoritative."""

    __tablename__ = "dispute_record"

    id: str = Field(primary_key=True, max_length=40)
    campaign_id: str = Field(index=True, max_length=40)
    stage: str = Field(index=True, max_length=30)
    mediator_id: str | None = Field(default=None, index=True, max_length=40)
    brand_id: str = Field(index=True, max_length=40)
    creator_id: str = Field(index=True, max_length=40)
    agency_id: str | None = Field(default=None, index=True, max_length=40)
    # Once a dispute reached mediation every mediator may see it (SPEC §1), even afterwards.
    mediated: bool = False
    version: int = Field(default=0, sa_type=BigInteger)  # as the campaign record's
    snapshot: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class TimelineEvent(SQLModel, table=True):
    """A campaign's history, its disputes' events included (in the order they were written)."""

    __tablename__ = "timeline_event"
    __table_args__ = (UniqueConstraint("source", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(index=True, max_length=40)
    # The workflow that wrote it (campaign or dispute id); with seq it makes writes idempotent.
    source: str = Field(max_length=40)
    seq: int = Field(sa_type=BigInteger)  # the workflow's change number (64 bits: see version)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    kind: str = Field(max_length=60)
    actor: str | None = Field(default=None, max_length=40)
    data: dict = Field(default_factory=dict, sa_type=JSON)


class Notification(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("event_key", "party_id"),)

    # Insertion order for stable newest-first paging (ids are random).
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=40)
    # Business id of what caused it; with party_id it makes writing idempotent.
    event_key: str = Field(max_length=120)
    party_id: str = Field(index=True, max_length=40)
    campaign_id: str | None = Field(default=None, index=True, max_length=40)
    dispute_id: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=60)
    title: str = Field(max_length=300)
    body: str = Field(default="", sa_type=Text)
    data: dict = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _ts()
    read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Outbound channels: None when it does not apply, else pending → sent (or failed when the
    # retries ran out); each is sent at most once successfully.
    email_state: str | None = Field(default=None, max_length=10)
    webhook_state: str | None = Field(default=None, max_length=10)
    delivery_attempts: int = 0
    delivery_error: str | None = Field(default=None, sa_type=Text)


class Message(SQLModel, table=True):
    """One thread per campaign (SPEC §6): in the database, never in workflow history."""

    # Insertion order: the cursor of the thread and the SSE event id.
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=40)
    campaign_id: str = Field(index=True, max_length=40)
    author_id: str = Field(max_length=40)
    body: str = Field(sa_type=Text)
    created_at: datetime = _ts()


class StripeEvent(SQLModel, table=True):
    """Stripe webhook events already handled (deliveries repeat)."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    received_at: datetime = _ts()


class ReviewRecord(SQLModel, table=True):
    """One side's review of the other (SPEC §6), written from the campaign workflow.

    `visible` follows the workflow's double-blind rule; until then only its author sees it.
    """

    __tablename__ = "review"
    __table_args__ = (UniqueConstraint("campaign_id", "side"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(index=True, max_length=40)
    side: str = Field(max_length=10)  # the reviewing side
    reviewer_id: str = Field(max_length=40)
    subject_id: str = Field(index=True, max_length=40)
    subject_agency_id: str | None = Field(default=None, index=True, max_length=40)
    rating: int
    comment: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    visible: bool = False


class EvidenceText(SQLModel, table=True):
    """Evidence text and quoted messages, content-addressed like evidence files (issue #11).

    Written by the API before the dispute's `add_evidence` Update, which carries only the
    sha256; reads of a dispute put the text back. Identical texts are stored once.
    """

    __tablename__ = "evidence_text"

    sha256: str = Field(primary_key=True, max_length=64)
    text: str = Field(sa_type=Text)
    created_at: datetime = _ts()


async def store_evidence_text(session, text: str) -> str:
    """Stores `text` once under its sha256 (a concurrent or earlier writer may have stored
    it first) and answers the digest; the caller commits."""
    digest = sha256_hex(text.encode())
    if await session.get(EvidenceText, digest) is None:
        try:
            async with session.begin_nested():
                session.add(EvidenceText(sha256=digest, text=text))
        except IntegrityError:
            pass
    return digest


class ReconciliationReport(SQLModel, table=True):
    """One reconciliation sweep: what it checked and what did not add up (issue #10)."""

    __tablename__ = "reconciliation_report"

    id: int | None = Field(default=None, primary_key=True)
    campaigns_checked: int = 0
    legs_checked: int = 0
    findings: list = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = _ts()


class MetricSnapshot(SQLModel, table=True):
    """One look at a tracked post (issue #15): from a provider the workflow polls, or from an
    integration. Never in workflow history: the workflow hears the id, the figures and the
    sha256 of the canonical payload."""

    __tablename__ = "metric_snapshot"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(index=True, max_length=40)
    deliverable: int
    source: str = Field(max_length=60)  # link | http | integration:{key id}
    taken_at: datetime = _ts()
    figures: dict = Field(default_factory=dict, sa_type=JSON)  # contracted metrics only
    reachable: bool = True
    sha256: str = Field(max_length=64)


class IntegrationKey(SQLModel, table=True):
    """A key an admin issues to a metrics integration: stored as its SHA-256 digest only."""

    __tablename__ = "integration_key"

    id: str = Field(primary_key=True, max_length=40)
    key_hash: str = Field(unique=True, max_length=64)
    label: str = Field(max_length=200)
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
