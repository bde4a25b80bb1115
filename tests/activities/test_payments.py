"""Payment activities on the sandbox rail, against real databases (SQLite and PostgreSQL).

Activities run in `ActivityEnvironment`; "retries" are further calls with the same
argument, exactly what Temporal does after a failed attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.payments import (
    FAULT_KILL_AFTER_RAIL,
    IDEMPOTENCY_KEY_REUSED,
    NOT_FUNDED,
    PaymentActivities,
)
from activities.rails import SandboxRail, StripeRail
from db.models import LedgerEntry, Party, SandboxMovement
from domain.parties import Role
from domain.payments import (
    DECLINED_PAYMENT_METHOD,
    PAYMENT_DECLINED,
    FundCampaign,
    Movement,
    RefundFunds,
    ReleaseFunds,
)

ROOT = Path(__file__).resolve().parents[2]


def sbx(prefix: str, key: str) -> str:
    return f"sbx_{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def new_campaign() -> str:
    return f"cmp_{uuid.uuid4().hex[:16]}"


def fund(cid: str, amount: int = 10_000, **extra) -> FundCampaign:
    fields = dict(idempotency_key=f"{cid}:fund", campaign_id=cid, brand_id="brand", amount=amount)
    return FundCampaign(currency="eur", **(fields | extra))


async def run(fn, arg) -> Movement:
    return await ActivityEnvironment().run(fn, arg)


async def ledger(sessionmaker, cid: str) -> list[tuple]:
    async with sessionmaker() as session:
        rows = await session.exec(
            select(LedgerEntry).where(LedgerEntry.campaign_id == cid).order_by(LedgerEntry.id)
        )
        return [
            (
                e.idempotency_key,
                e.kind,
                e.amount,
                e.platform_fee,
                e.agency_commission,
                e.currency,
                e.rail,
                e.state,
                e.rail_reference,
                e.agency_reference,
            )
            for e in rows.all()
        ]


async def book(sessionmaker, cid: str) -> list[tuple]:
    async with sessionmaker() as session:
        rows = await session.exec(
            select(SandboxMovement)
            .where(col(SandboxMovement.idempotency_key).startswith(f"{cid}:"))
            .order_by(SandboxMovement.id)
        )
        return [
            (m.idempotency_key, m.kind, m.amount, m.currency, m.counterparty, m.reference)
            for m in rows.all()
        ]


async def add_party(sessionmaker, role: Role, stripe_account: str | None = None) -> str:
    party_id = f"{role}_{uuid.uuid4().hex[:12]}"
    async with sessionmaker() as session:
        session.add(
            Party(
                id=party_id,
                name=party_id,
                role=role,
                email=f"{party_id}@example.com",
                stripe_account=stripe_account,
                api_key_hash=uuid.uuid4().hex,
            )
        )
        await session.commit()
    return party_id


class FlakyRail:
    """The sandbox rail behind a network that fails the first `failures` calls of each kind,
    either before the request reaches the rail or after the rail acted (lost response).
    Counts every call that reaches it."""

    name = "sandbox"

    def __init__(self, inner: SandboxRail, failures: int, after_rail: bool = False) -> None:
        self.inner = inner
        self.failures = failures
        self.after_rail = after_rail
        self.calls: dict[str, int] = {}

    async def _call(self, kind: str, coro):
        self.calls[kind] = self.calls.get(kind, 0) + 1
        if self.calls[kind] > self.failures:
            return await coro
        if self.after_rail:
            await coro
        else:
            coro.close()
        raise ConnectionError(f"{kind}: connection reset")

    async def charge(self, *args) -> str:
        return await self._call("charge", self.inner.charge(*args))

    async def transfer(self, *args) -> str:
        return await self._call("transfer", self.inner.transfer(*args))

    async def refund(self, *args) -> str:
        return await self._call("refund", self.inner.refund(*args))

    async def find_charge(self, key: str):
        return await self.inner.find_charge(key)  # faults are injected on the moves

    async def find_transfer(self, key: str, transfer_group: str):
        return await self.inner.find_transfer(key, transfer_group)

    async def find_refund(self, key: str, charge_reference: str):
        return await self.inner.find_refund(key, charge_reference)


@pytest.fixture
def payments(settings, sessionmaker) -> PaymentActivities:
    return PaymentActivities(settings, sessionmaker)


def test_rail_follows_settings(settings, sessionmaker):
    assert isinstance(PaymentActivities(settings, sessionmaker).rail, SandboxRail)
    stripe_settings = settings.model_copy(
        update={"payments": "stripe", "stripe_api_key": "sk_test_x"}
    )
    assert isinstance(PaymentActivities(stripe_settings, sessionmaker).rail, StripeRail)


async def test_fund_release_refund_books_exact_ledger(payments, sessionmaker):
    cid = new_campaign()
    creator = await add_party(sessionmaker, Role.CREATOR, stripe_account="acct_creator1")
    agency = await add_party(sessionmaker, Role.AGENCY)  # not onboarded: sandbox uses its id

    funded = await run(payments.fund_campaign, fund(cid))
    released = await run(
        payments.release_funds,
        ReleaseFunds(
            idempotency_key=f"{cid}:release:0",
            campaign_id=cid,
            currency="eur",
            gross=6_000,
            platform_fee=600,
            agency_commission=300,
            creator_net=5_100,
            creator_id=creator,
            agency_id=agency,
        ),
    )
    refunded = await run(
        payments.refund_funds,
        RefundFunds(
            idempotency_key=f"{cid}:refund:1", campaign_id=cid, currency="eur", amount=4_000
        ),
    )

    charge_ref = sbx("ch", f"{cid}:fund")
    creator_ref = sbx("tr", f"{cid}:release:0:creator")
    agency_ref = sbx("tr", f"{cid}:release:0:agency")
    refund_ref = sbx("re", f"{cid}:refund:1")
    assert funded == Movement(
        idempotency_key=f"{cid}:fund", rail="sandbox", reference=charge_ref, amount=10_000
    )
    assert released == Movement(
        idempotency_key=f"{cid}:release:0:creator",
        rail="sandbox",
        reference=creator_ref,
        amount=6_000,
    )
    assert refunded == Movement(
        idempotency_key=f"{cid}:refund:1", rail="sandbox", reference=refund_ref, amount=4_000
    )
    # One row per leg: the creator's transfer, the agency's, the fee kept (no rail call).
    assert await ledger(sessionmaker, cid) == [
        (f"{cid}:fund", "fund", 10_000, 0, 0, "eur", "sandbox", "succeeded", charge_ref, None),
        (
            f"{cid}:release:0:creator",
            "release",
            5_100,
            0,
            0,
            "eur",
            "sandbox",
            "succeeded",
            creator_ref,
            None,
        ),
        (
            f"{cid}:release:0:agency",
            "commission",
            300,
            0,
            0,
            "eur",
            "sandbox",
            "succeeded",
            agency_ref,
            None,
        ),
        (f"{cid}:release:0:fee", "fee", 600, 0, 0, "eur", "sandbox", "succeeded", None, None),
        (f"{cid}:refund:1", "refund", 4_000, 0, 0, "eur", "sandbox", "succeeded", refund_ref, None),
    ]
    # The platform fee (600) is never transferred: it stays on the platform.
    assert await book(sessionmaker, cid) == [
        (f"{cid}:fund", "charge", 10_000, "eur", None, charge_ref),
        (f"{cid}:release:0:creator", "transfer", 5_100, "eur", "acct_creator1", creator_ref),
        (f"{cid}:release:0:agency", "transfer", 300, "eur", agency, agency_ref),
        (f"{cid}:refund:1", "refund", 4_000, "eur", charge_ref, refund_ref),
    ]


async def test_repeated_calls_move_money_once(settings, sessionmaker):
    cid = new_campaign()
    rail = FlakyRail(SandboxRail(sessionmaker), failures=0)
    payments = PaymentActivities(settings, sessionmaker, rail)
    release = ReleaseFunds(
        idempotency_key=f"{cid}:release:0",
        campaign_id=cid,
        currency="eur",
        gross=1_000,
        platform_fee=100,
        agency_commission=0,
        creator_net=900,
        creator_id="creator_without_row",
    )
    first_fund = await run(payments.fund_campaign, fund(cid))
    first_release = await run(payments.release_funds, release)
    assert await run(payments.fund_campaign, fund(cid)) == first_fund
    assert await run(payments.release_funds, release) == first_release
    assert rail.calls == {"charge": 1, "transfer": 1}  # answered from the ledger
    assert [row[0] for row in await ledger(sessionmaker, cid)] == [
        f"{cid}:fund",
        f"{cid}:release:0:creator",
        f"{cid}:release:0:fee",
    ]
    assert [row[0] for row in await book(sessionmaker, cid)] == [
        f"{cid}:fund",
        f"{cid}:release:0:creator",
    ]


async def test_declined_card_is_final_for_its_key(settings, sessionmaker):
    cid = new_campaign()
    rail = FlakyRail(SandboxRail(sessionmaker), failures=0)
    payments = PaymentActivities(settings, sessionmaker, rail)
    declined = fund(cid, payment_method=DECLINED_PAYMENT_METHOD)

    for _ in range(2):
        with pytest.raises(ApplicationError) as raised:
            await run(payments.fund_campaign, declined)
        assert raised.value.type == PAYMENT_DECLINED
        assert raised.value.non_retryable
    assert rail.calls == {"charge": 1}  # the second call never reached the rail
    assert await book(sessionmaker, cid) == []
    async with sessionmaker() as session:
        entry = (
            await session.exec(select(LedgerEntry).where(LedgerEntry.campaign_id == cid))
        ).one()
    assert (entry.state, entry.rail_reference) == ("failed", None)
    assert DECLINED_PAYMENT_METHOD in entry.error

    # The workflow's next attempt uses a new key and another card.
    second = await run(payments.fund_campaign, fund(cid, idempotency_key=f"{cid}:fund:2"))
    assert second.reference == sbx("ch", f"{cid}:fund:2")
    assert [(row[0], row[7]) for row in await ledger(sessionmaker, cid)] == [
        (f"{cid}:fund", "failed"),
        (f"{cid}:fund:2", "succeeded"),
    ]
    assert len(await book(sessionmaker, cid)) == 1


async def test_lost_requests_retry_into_one_charge(settings, sessionmaker):
    cid = new_campaign()
    rail = FlakyRail(SandboxRail(sessionmaker), failures=2)
    payments = PaymentActivities(settings, sessionmaker, rail)

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await run(payments.fund_campaign, fund(cid))
        assert [row[7] for row in await ledger(sessionmaker, cid)] == ["pending"]
    movement = await run(payments.fund_campaign, fund(cid))

    assert rail.calls == {"charge": 3}
    assert movement.reference == sbx("ch", f"{cid}:fund")
    assert [row[7:9] for row in await ledger(sessionmaker, cid)] == [
        ("succeeded", movement.reference)
    ]
    assert await book(sessionmaker, cid) == [
        (f"{cid}:fund", "charge", 10_000, "eur", None, movement.reference)
    ]


async def test_a_charge_whose_answer_was_lost_is_found_not_made_again(settings, sessionmaker):
    """The rail charged but its answer was lost: the retry looks the charge up first (Stripe
    forgets keys after 24 h, so charging again under the key could charge twice)."""
    cid = new_campaign()
    rail = FlakyRail(SandboxRail(sessionmaker), failures=1, after_rail=True)
    payments = PaymentActivities(settings, sessionmaker, rail)
    with pytest.raises(ConnectionError):
        await run(payments.fund_campaign, fund(cid))
    movement = await run(payments.fund_campaign, fund(cid))

    assert rail.calls == {"charge": 1}
    assert movement.reference == sbx("ch", f"{cid}:fund")
    assert [row[7:9] for row in await ledger(sessionmaker, cid)] == [
        ("succeeded", movement.reference)
    ]


async def test_concurrent_attempts_move_money_once(payments, sessionmaker):
    cid = new_campaign()
    await run(payments.fund_campaign, fund(cid))
    release = ReleaseFunds(
        idempotency_key=f"{cid}:release:0",
        campaign_id=cid,
        currency="eur",
        gross=2_000,
        platform_fee=200,
        agency_commission=100,
        creator_net=1_700,
        creator_id="creator_x",
        agency_id="agency_x",
    )
    refund = RefundFunds(
        idempotency_key=f"{cid}:refund:1", campaign_id=cid, currency="eur", amount=500
    )
    releases = await asyncio.gather(*(run(payments.release_funds, release) for _ in range(5)))
    refunds = await asyncio.gather(*(run(payments.refund_funds, refund) for _ in range(5)))

    assert all(m == releases[0] for m in releases)
    assert all(m == refunds[0] for m in refunds)
    assert [row[0] for row in await ledger(sessionmaker, cid)] == [
        f"{cid}:fund",
        f"{cid}:release:0:creator",
        f"{cid}:release:0:agency",
        f"{cid}:release:0:fee",
        f"{cid}:refund:1",
    ]
    assert [row[:3] for row in await book(sessionmaker, cid)] == [
        (f"{cid}:fund", "charge", 10_000),
        (f"{cid}:release:0:creator", "transfer", 1_700),
        (f"{cid}:release:0:agency", "transfer", 100),
        (f"{cid}:refund:1", "refund", 500),
    ]


async def test_concurrent_first_attempts_charge_once(payments, sessionmaker):
    cid = new_campaign()
    movements = await asyncio.gather(*(run(payments.fund_campaign, fund(cid)) for _ in range(5)))
    assert all(m == movements[0] for m in movements)
    assert len(await ledger(sessionmaker, cid)) == 1
    assert len(await book(sessionmaker, cid)) == 1


async def test_zero_amounts_are_recorded_without_rail_calls(payments, sessionmaker):
    cid = new_campaign()
    await run(payments.fund_campaign, fund(cid))
    movement = await run(
        payments.release_funds,
        ReleaseFunds(
            idempotency_key=f"{cid}:settle:release",
            campaign_id=cid,
            currency="eur",
            gross=0,
            platform_fee=0,
            agency_commission=0,
            creator_net=0,
            creator_id="creator_x",
        ),
    )
    assert (movement.reference, movement.amount) == ("", 0)
    assert [row[:3] + row[7:9] for row in await ledger(sessionmaker, cid)][1] == (
        f"{cid}:settle:release:creator",
        "release",
        0,
        "succeeded",
        None,  # no rail object: nothing was sent
    )
    assert [row[0] for row in await book(sessionmaker, cid)] == [f"{cid}:fund"]


async def test_key_reused_for_another_amount_is_refused(payments, sessionmaker):
    cid = new_campaign()
    await run(payments.fund_campaign, fund(cid))
    with pytest.raises(ApplicationError) as raised:
        await run(payments.fund_campaign, fund(cid, amount=9_999))
    assert raised.value.type == IDEMPOTENCY_KEY_REUSED and raised.value.non_retryable
    assert [row[2] for row in await book(sessionmaker, cid)] == [10_000]


async def test_refund_needs_a_funded_campaign(payments, sessionmaker):
    cid = new_campaign()
    # Only a succeeded funding counts: a declined one left nothing to refund.
    with pytest.raises(ApplicationError):
        await run(payments.fund_campaign, fund(cid, payment_method=DECLINED_PAYMENT_METHOD))
    with pytest.raises(ApplicationError) as raised:
        await run(
            payments.refund_funds,
            RefundFunds(
                idempotency_key=f"{cid}:refund:0", campaign_id=cid, currency="eur", amount=1
            ),
        )
    assert raised.value.type == NOT_FUNDED and raised.value.non_retryable
    assert [row[0] for row in await ledger(sessionmaker, cid)] == [f"{cid}:fund"]


CRASHING_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from temporalio.testing import ActivityEnvironment
    from activities.payments import PaymentActivities
    from config import Settings
    from db.engine import make_engine, make_sessionmaker
    from domain.payments import FundCampaign

    async def main():
        settings = Settings()
        engine = make_engine(settings.db_url)
        payments = PaymentActivities(settings, make_sessionmaker(engine))
        arg = FundCampaign.model_validate_json(sys.argv[1])
        movement = await ActivityEnvironment().run(payments.fund_campaign, arg)
        print(movement.reference)
        await engine.dispose()

    asyncio.run(main())
    """
)


async def test_fault_hook_kills_after_rail_and_retry_completes(settings, sessionmaker):
    """The worker dies between the rail call and the ledger update; the restarted attempt
    finds the pending entry, gets the same charge back from the rail and completes."""
    cid = new_campaign()
    key = f"{cid}:fund"
    env = os.environ | {
        "PARLEY_DATABASE_URL": settings.db_url,
        "PARLEY_DATA_DIR": str(settings.data_dir),
        FAULT_KILL_AFTER_RAIL: key,
    }

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", CRASHING_WORKER, fund(cid).model_dump_json()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    crashed = await asyncio.to_thread(attempt)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert [row[7:9] for row in await ledger(sessionmaker, cid)] == [("pending", None)]
    assert len(await book(sessionmaker, cid)) == 1  # the money did move
    assert (settings.data_dir / f"fault-{hashlib.sha256(key.encode()).hexdigest()}").exists()

    retried = await asyncio.to_thread(attempt)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == sbx("ch", key)
    assert [row[7:9] for row in await ledger(sessionmaker, cid)] == [("succeeded", sbx("ch", key))]
    assert len(await book(sessionmaker, cid)) == 1
