"""Every leg of a release is its own ledger row and is never sent twice (issue #10 item 3);
a leg the rail refuses for good fails visibly, once, and goes again only under a new key."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.payments import PaymentActivities
from activities.rails import MissingPayoutAccount, SandboxRail
from db.models import LedgerEntry
from domain.parties import Role
from domain.payments import RAIL_REFUSED, ReleaseFunds
from tests.activities.test_payments import add_party, book, fund, ledger, new_campaign, run


class ForgetfulRail:
    """Stripe keeps an idempotency key for 24 hours only: after that a repeated key is a new
    request. This rail forgets at once, so a leg sent twice would be paid twice; it fails
    the agency's transfer `agency_failures` times, and refuses a destination listed in
    `refusing` as Stripe does an account without payouts."""

    name = "sandbox"

    def __init__(self, inner: SandboxRail, agency_failures: int = 0) -> None:
        self.inner = inner
        self.agency_failures = agency_failures
        self.refusing: set[str] = set()
        self.transfers: list[str] = []  # every key that reached the rail
        self.made: dict[str, str] = {}  # key -> transfer, as Stripe lists them by metadata

    async def charge(self, *args) -> str:
        return await self.inner.charge(*args)

    async def refund(self, *args) -> str:
        return await self.inner.refund(*args)

    async def find_transfer(self, key: str, transfer_group: str) -> str | None:
        return self.made.get(key)

    async def find_refund(self, key: str, charge_reference: str) -> str | None:
        return await self.inner.find_refund(key, charge_reference)

    async def transfer(self, key, amount, currency, party_id, account, group) -> str:
        self.transfers.append(key)
        if party_id in self.refusing:
            raise MissingPayoutAccount(f"party {party_id} has no Stripe account")
        if key.endswith(":agency") and self.agency_failures:
            self.agency_failures -= 1
            raise ConnectionError("agency transfer: connection reset")
        # A fresh key each time: the inner book would otherwise dedupe what Stripe would not.
        self.made[key] = await self.inner.transfer(
            f"{key}#{len(self.transfers)}", amount, currency, party_id, account, group
        )
        return self.made[key]


def release(cid: str, creator: str, agency: str | None, attempt: int = 1) -> ReleaseFunds:
    return ReleaseFunds(
        idempotency_key=f"{cid}:release:0",
        campaign_id=cid,
        currency="eur",
        gross=6_000,
        platform_fee=600,
        agency_commission=300 if agency else 0,
        creator_net=5_100 if agency else 5_400,
        creator_id=creator,
        agency_id=agency,
        attempt=attempt,
    )


async def test_a_failing_agency_leg_never_resends_the_creators_transfer(settings, sessionmaker):
    cid = new_campaign()
    creator = await add_party(sessionmaker, Role.CREATOR, stripe_account="acct_c")
    agency = await add_party(sessionmaker, Role.AGENCY, stripe_account="acct_a")
    rail = ForgetfulRail(SandboxRail(sessionmaker), agency_failures=5)
    payments = PaymentActivities(settings, sessionmaker, rail)
    await run(payments.fund_campaign, fund(cid))
    for _ in range(5):  # Temporal's retries of the failing activity
        with pytest.raises(ConnectionError):
            await run(payments.release_funds, release(cid, creator, agency))
    await run(payments.release_funds, release(cid, creator, agency))

    assert rail.transfers.count(f"{cid}:release:0:creator") == 1
    assert rail.transfers.count(f"{cid}:release:0:agency") == 6
    rows = {row[0]: (row[1], row[2], row[7]) for row in await ledger(sessionmaker, cid)}
    assert rows == {
        f"{cid}:fund": ("fund", 10_000, "succeeded"),
        f"{cid}:release:0:creator": ("release", 5_100, "succeeded"),
        f"{cid}:release:0:agency": ("commission", 300, "succeeded"),
        f"{cid}:release:0:fee": ("fee", 600, "succeeded"),
    }
    paid: dict[str, int] = {}
    for _, kind, amount, _, counterparty, _ in await book(sessionmaker, cid):
        if kind == "transfer":
            paid[counterparty] = paid.get(counterparty, 0) + amount
    assert paid == {"acct_c": 5_100, "acct_a": 300}


async def test_a_refused_leg_fails_visibly_and_goes_again_under_a_new_key(settings, sessionmaker):
    cid = new_campaign()
    creator = await add_party(sessionmaker, Role.CREATOR, stripe_account="acct_c")
    rail = ForgetfulRail(SandboxRail(sessionmaker))
    rail.refusing.add(creator)
    payments = PaymentActivities(settings, sessionmaker, rail)
    await run(payments.fund_campaign, fund(cid))

    for _ in range(2):  # refused: non-retryable, and the same key stays refused
        with pytest.raises(ApplicationError) as refused:
            await run(payments.release_funds, release(cid, creator, None))
        assert refused.value.type == RAIL_REFUSED and refused.value.non_retryable
    assert rail.transfers == [f"{cid}:release:0:creator"]  # asked once; the row answers the repeat
    rows = {row[0]: row[7] for row in await ledger(sessionmaker, cid)}
    assert rows[f"{cid}:release:0:creator"] == "failed"

    rail.refusing.clear()  # the creator finished onboarding
    await run(payments.release_funds, release(cid, creator, None, attempt=2))
    await run(payments.release_funds, release(cid, creator, None, attempt=2))  # a retry
    assert rail.transfers == [f"{cid}:release:0:creator", f"{cid}:release:0:creator:2"]
    rows = {row[0]: (row[2], row[7]) for row in await ledger(sessionmaker, cid)}
    assert rows[f"{cid}:release:0:creator:2"] == (5_400, "succeeded")
    assert rows[f"{cid}:release:0:fee"] == (600, "succeeded")


async def test_a_release_row_from_before_legs_finishes_under_its_own_key(settings, sessionmaker):
    """A release written as one row (gross, fee, commission) and left pending by a worker
    that died mid-way: the rail knows its creator transfer by `{key}`, so that key is kept."""
    cid = new_campaign()
    creator = await add_party(sessionmaker, Role.CREATOR, stripe_account="acct_c")
    rail = ForgetfulRail(SandboxRail(sessionmaker))
    payments = PaymentActivities(settings, sessionmaker, rail)
    await run(payments.fund_campaign, fund(cid))
    async with sessionmaker() as session:
        session.add(
            LedgerEntry(
                idempotency_key=f"{cid}:release:0",
                campaign_id=cid,
                kind="release",
                amount=6_000,
                platform_fee=600,
                currency="eur",
                rail="sandbox",
            )
        )
        await session.commit()
    await run(payments.release_funds, release(cid, creator, None))
    assert rail.transfers == [f"{cid}:release:0"]
    rows = {row[0]: row[7] for row in await ledger(sessionmaker, cid)}
    assert rows == {
        f"{cid}:fund": "succeeded",
        f"{cid}:release:0": "succeeded",
        f"{cid}:release:0:fee": "succeeded",
    }
