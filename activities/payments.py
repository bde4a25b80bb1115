"""Money-moving activities: the local ledger around every rail call (SPEC §2).

One ledger row per leg of money (the charge, each transfer, each refund, the platform fee
kept), each under its own idempotency key, written `pending` before the rail is called with
that same key and `succeeded`/`failed` after. A crash in between leaves a pending entry;
Temporal's retry finds it and calls the rail again with the same key, which the rail answers
with the first result. A leg that succeeded is never sent again: a release whose agency leg
fails retries the agency leg alone.

A rail that refuses a leg for good (`RailRefused`) fails it visibly and non-retryably; once
the cause is fixed the workflow asks again with `attempt` + 1 and the refused leg goes out
under a new key (`{key}:2`), as Stripe keeps answering a key with its first error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.rails import (
    Charge,
    PaymentDeclined,
    Rail,
    RailRefused,
    SandboxRail,
    StripeRail,
)
from config import Settings
from db.models import LedgerEntry, Party, utcnow
from domain.payments import (
    PAYMENT_DECLINED,
    RAIL_REFUSED,
    FundCampaign,
    Movement,
    RecordChargeback,
    RefundFunds,
    ReleaseFunds,
    SettleFunding,
)

# ApplicationError types of programming errors in the caller: retrying cannot fix them.
IDEMPOTENCY_KEY_REUSED = "IdempotencyKeyReused"
NOT_FUNDED = "NotFunded"

FAULT_KILL_AFTER_RAIL = "PARLEY_FAULT_KILL_AFTER_RAIL"


class LedgerKind(StrEnum):
    FUND = "fund"
    RELEASE = "release"  # the creator's transfer
    COMMISSION = "commission"  # the agency's transfer
    FEE = "fee"  # the platform's fee: kept, never transferred
    CHARGEBACK = "chargeback"  # taken back by the card network (a lost card dispute)
    REFUND = "refund"


class LedgerState(StrEnum):
    PENDING = "pending"  # written before the rail call: its outcome not seen yet
    SETTLING = "settling"  # a charge the rail accepted but has not settled (`processing`)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# One leg's rail call, given the leg's idempotency key and whether an earlier attempt under
# it may have reached the rail; answers the rail's object id and whether it is settling.
RailCall = Callable[[str, bool], Awaitable[Charge]]


def build_rail(settings: Settings, sessionmaker) -> Rail:
    if settings.payments == "stripe":
        return StripeRail(settings.stripe_api_key, settings.stripe_api_base)
    return SandboxRail(sessionmaker)


def _declined(message: str) -> ApplicationError:
    # A business outcome, not a fault: one line here, and BENIGN so the SDK does not log the
    # failure with its traceback at WARNING (issue #14).
    logging.getLogger("parley.payments").info("payment declined: %s", message)
    return ApplicationError(
        message,
        type=PAYMENT_DECLINED,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=RAIL_REFUSED, non_retryable=True)


def leg_key(key: str, attempt: int) -> str:
    return key if attempt <= 1 else f"{key}:{attempt}"


def _movement(entry: LedgerEntry) -> Movement:
    return Movement(
        idempotency_key=entry.idempotency_key,
        rail=entry.rail,
        reference=entry.rail_reference or "",
        amount=entry.amount,
        settling=entry.state == LedgerState.SETTLING,
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


def _whole_release(existing: LedgerEntry, leg: LedgerEntry) -> bool:
    """A row written before releases were split into legs: one row for the whole release
    under the creator's key (gross, with fee and commission). It stands for the creator's
    leg, which the rail knows under that same key."""
    return (
        existing.kind == leg.kind == LedgerKind.RELEASE
        and existing.campaign_id == leg.campaign_id
        and existing.amount == leg.amount + existing.platform_fee + existing.agency_commission
    )


class PaymentActivities:
    def __init__(self, settings: Settings, sessionmaker, rail: Rail | None = None) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.rail = rail if rail is not None else build_rail(settings, sessionmaker)

    @activity.defn
    async def fund_campaign(self, req: FundCampaign) -> Movement:
        async def charge(key: str, tried_before: bool) -> Charge:
            # After an attempt whose answer was lost, look first: Stripe forgets a key after
            # 24 h, and charging again under it then would charge twice.
            if tried_before and (found := await self.rail.find_charge(key)) is not None:
                return found
            description = f"Parley campaign {req.campaign_id}"
            return await self.rail.charge(
                key, req.amount, req.currency, req.payment_method, description, req.campaign_id
            )

        entry = self._entry(req.idempotency_key, req, LedgerKind.FUND, req.amount)
        return await self._move(entry, charge if req.amount else None)

    @activity.defn
    async def release_funds(self, req: ReleaseFunds) -> Movement:
        """Three legs, each its own row (SPEC §9): the creator's transfer (`{key}:creator`),
        the agency's commission (`{key}:agency`) and the fee the platform keeps (`{key}:fee`)."""
        accounts = await self._stripe_accounts(req.creator_id, req.agency_id)

        def transfer_to(party_id: str, amount: int):
            async def transfer(key: str, tried_before: bool) -> Charge:
                # Looked up first after an unanswered attempt, as a charge is: Stripe forgets
                # a key after 24 h, and sending again under it then would pay twice.
                if tried_before and (found := await self.rail.find_transfer(key, req.campaign_id)):
                    return found, False
                account = accounts.get(party_id)
                reference = await self.rail.transfer(
                    key, amount, req.currency, party_id, account, req.campaign_id
                )
                return reference, False

            return transfer

        creator = await self._leg(
            req,
            LedgerKind.RELEASE,
            await self._creator_key(req.idempotency_key),
            req.creator_net,
            transfer_to(req.creator_id, req.creator_net),
        )
        if req.agency_commission and req.agency_id:
            await self._leg(
                req,
                LedgerKind.COMMISSION,
                f"{req.idempotency_key}:agency",
                req.agency_commission,
                transfer_to(req.agency_id, req.agency_commission),
            )
        if req.platform_fee:
            await self._leg(req, LedgerKind.FEE, f"{req.idempotency_key}:fee", req.platform_fee)
        return creator.model_copy(update={"amount": req.gross})

    @activity.defn
    async def refund_funds(self, req: RefundFunds) -> Movement:
        # Looked up before the entry is written, so a refund of an unfunded campaign
        # leaves no pending entry behind.
        charge_reference = await self._funding_reference(req.campaign_id)

        async def refund(key: str, tried_before: bool) -> Charge:
            if tried_before and (found := await self.rail.find_refund(key, charge_reference)):
                return found, False
            return await self.rail.refund(key, charge_reference, req.amount), False

        return await self._leg(req, LedgerKind.REFUND, req.idempotency_key, req.amount, refund)

    @activity.defn
    async def record_chargeback(self, req: RecordChargeback) -> Movement:
        async def taken_back(key: str, _: bool) -> Charge:
            return req.reference, False  # the network moved it; the row holds its dispute id

        entry = self._entry(req.idempotency_key, req, LedgerKind.CHARGEBACK, req.amount)
        return await self._move(entry, taken_back if req.amount else None)

    @activity.defn
    async def settle_funding(self, req: SettleFunding) -> None:
        """The rail's final word on a charge that was settling or went unanswered."""
        state = LedgerState.SUCCEEDED if req.succeeded else LedgerState.FAILED
        await self._settle_row(req.idempotency_key, state, req.reference, req.reason)

    @activity.defn
    async def find_funding(self, req: FundCampaign) -> Movement | None:
        """A charge whose answer was never seen, looked up at the rail when its campaign
        would otherwise end: found, it is booked (the workflow then refunds it); not found,
        its row fails, as nothing was charged."""
        found = await self.rail.find_charge(req.idempotency_key)
        key = req.idempotency_key
        if found is None:
            await self._settle_row(key, LedgerState.FAILED, None, "never reached the rail")
            return None
        reference, settling = found
        state = LedgerState.SETTLING if settling else LedgerState.SUCCEEDED
        await self._settle_row(key, state, reference, "")
        entry = await self._entry_for(key)
        return _movement(entry) if entry else None

    async def _settle_row(
        self, key: str, state: LedgerState, reference: str | None, reason: str
    ) -> None:
        values: dict = {
            "state": state,
            "updated_at": utcnow(),
            "error": (reason or "failed at the rail") if state == LedgerState.FAILED else None,
        }
        if reference:
            values["rail_reference"] = reference
        async with self.sessionmaker() as session:
            # Only an open row moves: a repeated event finds it final and changes nothing.
            await session.exec(
                update(LedgerEntry)
                .where(
                    LedgerEntry.idempotency_key == key,
                    LedgerEntry.state.in_((LedgerState.PENDING, LedgerState.SETTLING)),
                )
                .values(**values)
            )
            await session.commit()

    # --- the ledger discipline ------------------------------------------------------------

    def _entry(
        self, key: str, req: FundCampaign | ReleaseFunds | RefundFunds, kind: str, amount: int
    ) -> LedgerEntry:
        return LedgerEntry(
            idempotency_key=key,
            campaign_id=req.campaign_id,
            kind=kind,
            amount=amount,
            currency=req.currency,
            rail=self.rail.name,
        )

    async def _leg(
        self,
        req: ReleaseFunds | RefundFunds,
        kind: LedgerKind,
        key: str,
        amount: int,
        call_rail: RailCall | None = None,
    ) -> Movement:
        """One leg under its first key that the rail has not refused: `{key}`, then
        `{key}:2`... up to this attempt's. A key that moved money (or may have: pending) is
        finished under that key, never replaced."""
        for attempt in range(1, req.attempt + 1):
            candidate = leg_key(key, attempt)
            earlier = await self._entry_for(candidate)
            if earlier is None or earlier.state != LedgerState.FAILED or attempt == req.attempt:
                entry = self._entry(candidate, req, kind, amount)
                return await self._move(entry, call_rail if amount else None)
        raise AssertionError("attempt starts at 1")

    async def _move(self, entry: LedgerEntry, call_rail: RailCall | None) -> Movement:
        """`call_rail` None: nothing to send (a zero amount, the fee kept), only recorded."""
        entry, fresh = await self._begin(entry)
        if entry.state in (LedgerState.SUCCEEDED, LedgerState.SETTLING):
            return _movement(entry)
        if entry.state == LedgerState.FAILED:
            # A refused key stays refused: the workflow asks again under a new key.
            if entry.kind == LedgerKind.FUND:
                raise _declined(entry.error or "payment declined")
            raise _refused(entry.error or "refused by the rail")
        key = entry.idempotency_key
        reference, settling = None, False
        if call_rail is not None:
            try:
                reference, settling = await call_rail(key, not fresh)
            except PaymentDeclined as err:
                await self._finish(key, LedgerState.FAILED, error=str(err))
                raise _declined(str(err)) from err
            except RailRefused as err:
                await self._finish(key, LedgerState.FAILED, error=str(err))
                raise _refused(str(err)) from err
            # Anything else propagates with the entry still pending: Temporal retries, and
            # the rail answers the same key with the same movement.
            self._fault_kill_after_rail(key)
        state = LedgerState.SETTLING if settling else LedgerState.SUCCEEDED
        entry = await self._finish(key, state, rail_reference=reference)
        return _movement(entry)

    async def _creator_key(self, key: str) -> str:
        """`{key}:creator`, unless a row written before legs existed holds this release under
        `{key}` — the key the rail knows its transfer by, which must never change."""
        legacy = await self._entry_for(key)
        return key if legacy is not None and legacy.kind == LedgerKind.RELEASE else f"{key}:creator"

    async def _entry_for(self, key: str) -> LedgerEntry | None:
        async with self.sessionmaker() as session:
            query = select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
            return (await session.exec(query)).first()

    async def _begin(self, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        """The entry for this key: inserted `pending` (fresh), or the one already there."""
        key = entry.idempotency_key
        wanted = _request_fields(entry)
        async with self.sessionmaker() as session:
            session.add(entry)
            try:
                await session.commit()
                return entry, True
            except IntegrityError:
                # A retry, or a concurrent attempt with the same key inserted it first.
                await session.rollback()
            query = select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
            existing = (await session.exec(query)).one()
        if _request_fields(existing) != wanted and not _whole_release(existing, entry):
            raise ApplicationError(
                f"idempotency key {key} was used for a different movement",
                type=IDEMPOTENCY_KEY_REUSED,
                non_retryable=True,
            )
        return existing, False

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
