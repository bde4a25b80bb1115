"""A payout the rail refuses for good (issue #10 item 6: no payout account, payouts not
enabled) parks visibly without holding the campaign, and goes out once the account can be
paid: by the admin's retry or by Stripe's `account.updated`. The creator is paid once."""

from __future__ import annotations

from sqlmodel import select

from db.models import LedgerEntry, Party
from tests.api.test_campaigns import WORK, create_and_fund, ok, until
from tests.api.test_parties import assert_problem
from tests.api.test_stripe_webhooks import signed


async def set_account(sessionmaker, party_id: str, account: str) -> None:
    async with sessionmaker() as session:
        party = await session.get(Party, party_id)
        party.stripe_account = account
        session.add(party)
        await session.commit()


async def release_rows(sessionmaker, cid: str) -> list[tuple[str, str]]:
    async with sessionmaker() as session:
        rows = await session.exec(
            select(LedgerEntry)
            .where(LedgerEntry.campaign_id == cid, LedgerEntry.kind == "release")
            .order_by(LedgerEntry.id)
        )
        return [(e.idempotency_key.removeprefix(cid), e.state) for e in rows.all()]


async def approve(brand, creator, cid: str, index: int) -> None:
    await ok(
        await creator.client.post(f"/v1/campaigns/{cid}/deliverables/{index}/submit", json=WORK)
    )
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/{index}/approve"))


async def test_a_refused_payout_parks_and_goes_out_after_the_admins_retry(
    api, make_party, sessionmaker
):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_blockedOnboarding")
    cid = (await create_and_fund(brand, creator))["id"]
    await approve(brand, creator, cid, 0)
    blocked = await until(
        brand.client, cid, lambda c: c["deliverables"][0]["payout_blocked"] is not None
    )
    assert "payouts are not enabled" in blocked["deliverables"][0]["payout_blocked"]
    assert blocked["deliverables"][0]["status"] == "approved"
    assert blocked["escrow"]["held"] == 15_000
    # The campaign is not held by the refused payout: the parties go on.
    await approve(brand, creator, cid, 1)
    assert await release_rows(sessionmaker, cid) == [(":release:0:creator", "failed")]

    await set_account(sessionmaker, creator.id, "acct_onboarded")
    await ok(await api.http.post(f"/v1/campaigns/{cid}/retry-payouts", json={"reason": "KYC"}))
    done = await until(brand.client, cid, lambda c: c["status"] == "completed")
    assert done["escrow"]["held"] == 0 and done["escrow"]["released_to_creator"] > 0
    assert await release_rows(sessionmaker, cid) == [
        (":release:0:creator", "failed"),
        (":release:0:creator:2", "succeeded"),
        (":release:1:creator", "succeeded"),
    ]
    assert_problem(await api.http.post(f"/v1/campaigns/{cid}/retry-payouts"), 409, "invalid_state")


async def test_stripe_account_updated_releases_blocked_payouts(api, make_party, sessionmaker):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_blockedKyc")
    cid = (await create_and_fund(brand, creator, amounts=(5_000,)))["id"]
    await approve(brand, creator, cid, 0)
    await until(brand.client, cid, lambda c: c["deliverables"][0]["payout_blocked"] is not None)

    await set_account(sessionmaker, creator.id, "acct_kycDone")
    event = {
        "id": "evt_acct_1",
        "type": "account.updated",
        "data": {"object": {"id": "acct_kycDone", "object": "account", "payouts_enabled": True}},
    }
    payload, headers = signed(event)
    response = await api.http.post("/v1/webhooks/stripe", content=payload, headers=headers)
    assert (await ok(response))["handled"] == creator.id
    done = await until(brand.client, cid, lambda c: c["status"] == "completed")
    assert done["escrow"]["held"] == 0
    assert await release_rows(sessionmaker, cid) == [
        (":release:0:creator", "failed"),
        (":release:0:creator:2", "succeeded"),
    ]
