"""Reconciliation (issue #10): the sweep finds what does not add up between the ledger, the
escrow, the rail's book and the workflows — and nothing where everything does."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from db.models import LedgerEntry, SandboxMovement, utcnow
from tests.api.test_campaigns import WORK, create_and_fund, ok, until


def about(report: dict, campaign_id: str) -> list[str]:
    return sorted(f["problem"] for f in report["findings"] if f["campaign_id"] == campaign_id)


async def test_the_sweep_is_quiet_when_money_adds_up_and_names_what_does_not(
    api, trio, settings, sessionmaker, temporal_env
):
    settings.reconciliation_quiet_seconds = 0
    brand, creator, _ = trio
    clean = (await create_and_fund(brand, creator))["id"]
    await ok(await creator.client.post(f"/v1/campaigns/{clean}/deliverables/0/submit", json=WORK))
    await ok(await brand.client.post(f"/v1/campaigns/{clean}/deliverables/0/approve"))
    await until(brand.client, clean, lambda c: c["deliverables"][0]["status"] == "released")
    doubled = (await create_and_fund(brand, creator))["id"]
    gone = (await create_and_fund(brand, creator))["id"]

    # The rail moved money the ledger does not know (a leg sent twice under another key), a
    # ledger row disagrees with its campaign, and a workflow holding money was terminated.
    async with sessionmaker() as session:
        session.add(
            SandboxMovement(
                idempotency_key=f"{doubled}:release:0:creator#again",
                kind="transfer",
                amount=9_000,
                currency="eur",
                reference="sbx_tr_again",
            )
        )
        refund = LedgerEntry(
            idempotency_key=f"{doubled}:refund:7",
            campaign_id=doubled,
            kind="refund",
            amount=500,
            currency="eur",
            rail="sandbox",
            state="pending",
            created_at=utcnow() - timedelta(hours=1),
            updated_at=utcnow() - timedelta(hours=1),
        )
        session.add(refund)
        await session.commit()
    await temporal_env.client.get_workflow_handle(f"campaign-{gone}").terminate("test")

    report = await ok(await api.http.post("/v1/admin/reconciliation"))
    assert report["campaigns_checked"] >= 3
    assert about(report, clean) == []
    assert about(report, doubled) == [
        "rail transfer 9000 not in the ledger",
        "refund unanswered for 60 min",
    ]
    assert about(report, gone) == ["holds 15000 but its workflow is terminated"]
    latest = await ok(await api.http.get("/v1/admin/reconciliation"))
    assert latest["id"] == report["id"]

    async with sessionmaker() as session:  # the refund's rail call is answered after all
        row = (
            await session.exec(
                select(LedgerEntry).where(LedgerEntry.idempotency_key == f"{doubled}:refund:7")
            )
        ).one()
        row.state = "succeeded"
        session.add(row)
        await session.commit()
    report = await ok(await api.http.post("/v1/admin/reconciliation"))
    assert "refund legs 500 != escrow refunded_to_brand 0" in about(report, doubled)
