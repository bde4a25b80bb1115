"""Money-moving activities: the local ledger around every rail call (SPEC §2).

Each movement is written `pending` under its unique idempotency key before the rail is
called with that same key, and `succeeded`/`failed` after. A crash in between leaves a
pending entry; Temporal's retry finds it and calls the rail again with the same key,
which the rail answers with the first result instead of moving money twice.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rails import PaymentDeclined, Rail, SandboxRail, StripeRail
from config import Settings
from db.models import LedgerEntry, Party, utcnow
from domain.payments import PAYMENT_DECLINED, FundCampaign, Movement, RefundFunds, ReleaseFunds

# ApplicationError types of programming errors in the caller: retrying cannot fix them.
IDEMPOTENCY_KEY_REUSED = "IdempotencyKeyReused"
NOT_FUNDED = "NotFunded"

FAULT_KILL_AFTER_RAIL = "PARLEY_FAULT_KILL_AFTER_RAIL"


class LedgerKind(StrEnum):
    FUND = "fund"
    RELEASE = "release"
    REFUND = "refund"


class LedgerState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# What the rail returned for one movement: main reference, agency transfer reference.
References = tuple[str, str | None]


def build_rail(settings: Settings, sessionmaker) -> Rail:
    if settings.payments == "stripe":
        return StripeRail(settings.stripe_api_key, settings.stripe_api_base)
    return SandboxRail(sessionmaker)


def _declined(message: str) -> ApplicationError:
    return ApplicationError(message, type=PAYMENT_DECLINED, non_retryable=True)


def _movement(entry: LedgerEntry) -> Movement:
    return Movement(
        idempotency_key=entry.idempotency_key,
        rail=entry.rail,
        reference=entry.rail_reference or "",
        amount=entry.amount,
    )


def _request_fields(entry: LedgerEntry) -> tuple:
    """What a key stands for: reusing a key for anything else is a caller bug."""
    return (
        entry.campaign_id,
        entry.kind,
        entry.amount,
        entry.platform_fee,
        entry.agency_commission,
        entry.currency,
    )


class PaymentActivities:
    def __init__(self, settings: Settings, sessionmaker, rail: Rail | None = None) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.rail = rail if rail is not None else build_rail(settings, sessionmaker)

    @activity.defn
    async def fund_campaign(self, req: FundCampaign) -> Movement:
        async def charge() -> References:
            if not req.amount:
                return "", None
            description = f"Parley campaign {req.campaign_id}"
            reference = await self.rail.charge(
                req.idempotency_key, req.amount, req.currency, req.payment_method, description
            )
            return reference, None

        entry = self._entry(req, LedgerKind.FUND, req.amount)
        return await self._move(entry, charge)

    @activity.defn
    async def release_funds(self, req: ReleaseFunds) -> Movement:
        async def transfer() -> References:
            accounts = await self._stripe_accounts(req.creator_id, req.agency_id)
            creator_ref = ""
            if req.creator_net:
                creator_ref = await self.rail.transfer(
                    req.idempotency_key,
                    req.creator_net,
                    req.currency,
                    req.creator_id,
                    accounts.get(req.creator_id),
                    req.campaign_id,
                )
            agency_ref = None
            if req.agency_commission and req.agency_id:
                agency_ref = await self.rail.transfer(
                    f"{req.idempotency_key}:agency",
                    req.agency_commission,
                    req.currency,
                    req.agency_id,
                    accounts.get(req.agency_id),
                    req.campaign_id,
                )
            # The platform fee is simply not transferred: it stays on the platform balance.
            return creator_ref, agency_ref

        entry = self._entry(
            req,
            LedgerKind.RELEASE,
            req.gross,
            platform_fee=req.platform_fee,
            agency_commission=req.agency_commission,
        )
        return await self._move(entry, transfer)

    @activity.defn
    async def refund_funds(self, req: RefundFunds) -> Movement:
        # Looked up before the entry is written, so a refund of an unfunded campaign
        # leaves no pending entry behind.
        charge_reference = await self._funding_reference(req.campaign_id)

        async def refund() -> References:
            if not req.amount:
                return "", None
            return await self.rail.refund(req.idempotency_key, charge_reference, req.amount), None

        entry = self._entry(req, LedgerKind.REFUND, req.amount)
        return await self._move(entry, refund)

    # --- the ledger discipline ------------------------------------------------------------

    def _entry(
        self,
        req: FundCampaign | ReleaseFunds | RefundFunds,
        kind: LedgerKind,
        amount: int,
        **split: int,
    ) -> LedgerEntry:
        return LedgerEntry(
            idempotency_key=req.idempotency_key,
            campaign_id=req.campaign_id,
            kind=kind,
            amount=amount,
            currency=req.currency,
            rail=self.rail.name,
            **split,
        )

    async def _move(
        self, entry: LedgerEntry, call_rail: Callable[[], Awaitable[References]]
    ) -> Movement:
        entry = await self._begin(entry)
        if entry.state == LedgerState.SUCCEEDED:
            return _movement(entry)
        if entry.state == LedgerState.FAILED:
            # A declined key stays declined; the workflow retries with a new key.
            raise _declined(entry.error or "payment declined")
        key = entry.idempotency_key
        try:
            reference, agency_reference = await call_rail()
        except PaymentDeclined as err:
            await self._finish(key, LedgerState.FAILED, error=str(err))
            raise _declined(str(err)) from err
        # Anything else propagates with the entry still pending: Temporal retries, and the
        # rail answers the same key with the same movement.
        self._fault_kill_after_rail(key)
        entry = await self._finish(
            key,
            LedgerState.SUCCEEDED,
            rail_reference=reference,
            agency_reference=agency_reference,
        )
        return _movement(entry)

    async def _begin(self, entry: LedgerEntry) -> LedgerEntry:
        """The entry for this key: inserted `pending`, or the one already there."""
        key = entry.idempotency_key
        wanted = _request_fields(entry)
        async with self.sessionmaker() as session:
            session.add(entry)
            try:
                await session.commit()
                return entry
            except IntegrityError:
                # A retry, or a concurrent attempt with the same key inserted it first.
                await session.rollback()
            query = select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
            existing = (await session.exec(query)).one()
        if _request_fields(existing) != wanted:
            raise ApplicationError(
                f"idempotency key {key} was used for a different movement",
                type=IDEMPOTENCY_KEY_REUSED,
                non_retryable=True,
            )
        return existing

    async def _finish(self, key: str, state: LedgerState, **values: str | None) -> LedgerEntry:
        async with self.sessionmaker() as session:
            # Only a pending entry moves on: a concurrent attempt that finished first wins,
            # and both saw the same rail result anyway.
            await session.exec(
                update(LedgerEntry)
                .where(LedgerEntry.idempotency_key == key, LedgerEntry.state == LedgerState.PENDING)
                .values(state=state, updated_at=utcnow(), **values)
            )
            await session.commit()
            query = select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
            return (await session.exec(query)).one()

    async def _stripe_accounts(self, *party_ids: str | None) -> dict[str, str | None]:
        wanted = [p for p in party_ids if p]
        async with self.sessionmaker() as session:
            rows = await session.exec(
                select(Party.id, Party.stripe_account).where(Party.id.in_(wanted))
            )
            return dict(rows.all())

    async def _funding_reference(self, campaign_id: str) -> str:
        query = (
            select(LedgerEntry.rail_reference)
            .where(
                LedgerEntry.campaign_id == campaign_id,
                LedgerEntry.kind == LedgerKind.FUND,
                LedgerEntry.state == LedgerState.SUCCEEDED,
            )
            .order_by(LedgerEntry.id.desc())
        )
        async with self.sessionmaker() as session:
            reference = (await session.exec(query)).first()
        if reference is None:
            raise ApplicationError(
                f"campaign {campaign_id} has no succeeded funding to refund",
                type=NOT_FUNDED,
                non_retryable=True,
            )
        return reference

    def _fault_kill_after_rail(self, key: str) -> None:
        """Crash-test hook: dies right after the rail moved money and before the ledger
        says so — the worst moment — to prove the retry neither loses nor doubles it.

        Fires once per key (the marker file survives the restart), so the restarted
        worker completes the movement.
        """
        if os.environ.get(FAULT_KILL_AFTER_RAIL) != key:
            return
        marker = self.settings.data_dir / f"fault-{hashlib.sha256(key.encode()).hexdigest()}"
        if marker.exists():
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
