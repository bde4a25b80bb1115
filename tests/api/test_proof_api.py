"""Proof of performance through the HTTP API (issue #15), with PT-seconds windows: the real app,
dev server and worker, a real metrics service over HTTP, a real database."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from db.models import MetricSnapshot
from tests.api.test_campaigns import campaign_body, create_and_accept, ok, until
from tests.api.test_parties import assert_problem
from tests.metrics_service import reading_from


@pytest.fixture
def settings(settings, metrics_service):
    """The worker reads counts from the test's service every second (loopback, plain http)."""
    return reading_from(settings, metrics_service, metrics_poll_seconds=1)


def views(target: int, within: str = "PT3S") -> list[dict]:
    return [{"metric": "views", "target": target, "within": within}]


async def tracked(brand, creator, url: str, amount: int = 10_000, terms=None, **proof) -> str:
    """A funded campaign whose one deliverable carries `proof`, submitted (with a forged
    `metrics` body) and approved: tracking has started. Its id."""
    body = campaign_body(creator.id, amounts=(amount,), **(terms or {}))
    body["deliverables"][0].update(proof)
    cid = (await create_and_accept(brand, creator, body))["id"]
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    # The creator's own word: a billion views. It never feeds the proof.
    work = {"url": url, "notes": "live", "metrics": {"views": 10**9, "likes": 10**9}}
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=work))
    approved = await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"))
    assert approved["deliverables"][0]["status"] == "approved"
    assert approved["deliverables"][0]["tracking"] is not None
    return cid


async def until_snapshots(sessionmaker, cid: str, count: int, timeout: float = 30) -> None:
    """Waits until the campaign has this many stored snapshots (the database holds every
    look; the resource changes only when something matters)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with sessionmaker() as session:
            query = select(func.count()).select_from(MetricSnapshot)
            found = (await session.exec(query.where(MetricSnapshot.campaign_id == cid))).one()
        if found >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.1)


def status_of(state: dict) -> str:
    return state["deliverables"][0]["status"]


async def timeline_types(client, cid: str) -> list[str]:
    page = await ok(await client.get(f"/v1/campaigns/{cid}/timeline", params={"limit": 100}))
    return [e["type"] for e in page["items"]]


async def test_proof_terms_are_in_the_contract_shown_and_validated(api, trio):
    brand, creator, _ = trio
    body = campaign_body(creator.id, amounts=(10_000,), cure_window="PT9S")
    plain = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    body["deliverables"][0].update(
        live_for="PT30S",
        objectives=views(1_000, "P14D"),
        payout_rule={"kind": "pro_rata", "floor_bps": 3_000},
    )
    proved = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    assert proved["contract_hash"] != plain["contract_hash"]
    item = proved["deliverables"][0]
    assert item["live_for"] == "PT30S" and item["cure_window"] == "PT9S"
    assert item["payout_rule"] == {"kind": "pro_rata", "floor_bps": 3_000}
    assert item["objectives"] == [
        {"metric": "views", "target": 1_000, "within": "P14D", "progress": None}
    ]
    assert plain["deliverables"][0]["live_for"] is None
    assert plain["deliverables"][0]["objectives"] is None

    for bad in (
        {"objectives": [{"metric": "reach", "target": 1, "within": "P1D"}]},
        {"objectives": views(0)},
        {"objectives": [{"metric": "views", "target": "10", "within": "P1D"}]},
        {"objectives": views(5), "payout_rule": {"kind": "all_or_nothing", "floor_bps": 10}},
        {"payout_rule": {"kind": "pro_rata"}},  # nothing to prove
        {"cure_window": "PT5S"},  # a cure window without a post that must stay live
        {"live_for": "P400D"},
    ):
        body = campaign_body(creator.id, amounts=(10_000,))
        body["deliverables"][0].update(bad)
        assert_problem(await brand.client.post("/v1/campaigns", json=body), 422, "validation_error")


async def test_views_reaching_the_target_release_everything(api, trio, metrics_service):
    brand, creator, _ = trio
    url = metrics_service.publish("full", views=2_000)
    cid = await tracked(
        brand,
        creator,
        url,
        live_for="PT3S",
        objectives=views(1_000, "PT2S"),
    )
    done = await until(brand.client, cid, lambda s: status_of(s) == "released")
    assert done["escrow"]["released_to_creator"] == 9_000
    assert done["escrow"]["platform_fee"] == 1_000
    assert done["escrow"]["refunded_to_brand"] == 0
    progress = done["deliverables"][0]["objectives"][0]["progress"]
    assert progress["achieved"] == 2_000 and progress["met"] and progress["evaluated"]
    types = await timeline_types(brand.client, cid)
    assert {"deliverable.progress", "deliverable.objective_evaluated"} <= set(types)
    assert types.index("deliverable.released") > types.index("deliverable.objective_evaluated")


async def test_half_the_target_pro_rata_releases_thirty_percent_plus_seventy_times_a_half(
    api, trio, metrics_service
):
    brand, creator, _ = trio
    url = metrics_service.publish("half", views=500)
    cid = await tracked(
        brand,
        creator,
        url,
        live_for="PT2S",
        objectives=views(1_000, "PT3S"),
        payout_rule={"kind": "pro_rata", "floor_bps": 3_000},
    )
    done = await until(brand.client, cid, lambda s: s["status"] == "completed")
    # 30 % + 70 % × ½ of 10,000 = 6,500 released (10 % fee), 3,500 refunded: the creator's
    # forged billion views counted for nothing.
    assert done["escrow"] == {
        "funded": 10_000,
        "held": 0,
        "released_to_creator": 5_850,
        "agency_commission": 0,
        "platform_fee": 650,
        "refunded_to_brand": 3_500,
        "charged_back": 0,
    }
    ledger = await ok(await brand.client.get(f"/v1/campaigns/{cid}/ledger"))
    legs = {(m["kind"], m["amount"]) for m in ledger["items"]}
    assert {("release", 5_850), ("fee", 650), ("refund", 3_500)} <= legs


async def test_takedown_then_cure_then_restored_resumes_and_releases(api, trio, metrics_service):
    brand, creator, _ = trio
    url = metrics_service.publish("cured", views=10)
    cid = await tracked(brand, creator, url, live_for="PT5S", terms={"cure_window": "PT60S"})
    metrics_service.take_down("cured")
    down = await until(brand.client, cid, lambda s: s["deliverables"][0]["tracking"]["cure_by"])
    assert status_of(down) == "approved" and not down["deliverables"][0]["tracking"]["reachable"]
    inbox = await ok(await creator.client.get("/v1/notifications", params={"campaign_id": cid}))
    assert "deliverable.taken_down" in [n["type"] for n in inbox["items"]]
    # Paused: live_for runs out while the post is down, and nothing is released.
    live_until = datetime.fromisoformat(down["deliverables"][0]["tracking"]["live_until"])
    await until(brand.client, cid, lambda s: datetime.now(UTC) > live_until + timedelta(seconds=2))
    assert status_of(await ok(await brand.client.get(f"/v1/campaigns/{cid}"))) == "approved"
    metrics_service.restore("cured")
    done = await until(brand.client, cid, lambda s: status_of(s) == "released")
    assert done["escrow"]["released_to_creator"] == 9_000 and done["dispute_id"] is None
    types = await timeline_types(brand.client, cid)
    assert types.index("deliverable.taken_down") < types.index("deliverable.restored")
    assert types.index("deliverable.restored") < types.index("deliverable.released")


async def test_takedown_without_cure_files_a_dispute_with_the_snapshots_as_evidence(
    api, trio, metrics_service, sessionmaker
):
    brand, creator, _ = trio
    url = metrics_service.publish("gone", views=10)
    cid = await tracked(brand, creator, url, live_for="PT30S", terms={"cure_window": "PT2S"})
    await until_snapshots(sessionmaker, cid, 2)  # it was live, and looked at
    metrics_service.take_down("gone")
    disputed = await until(brand.client, cid, lambda s: s["dispute_id"] is not None)
    assert status_of(disputed) == "disputed"
    dispute = await ok(await brand.client.get(f"/v1/disputes/{disputed['dispute_id']}"))
    assert dispute["reason"] == "post taken down"
    assert dispute["claim"] == {"release_to_creator": 0, "refund_to_brand": 10_000}
    [evidence] = dispute["evidence"]
    assert evidence["kind"] == "text" and evidence["submitted_by"] == "platform"
    assert evidence["sha256"] == hashlib.sha256(evidence["text"].encode()).hexdigest()
    case = await ok(await brand.client.get(f"/v1/disputes/{dispute['id']}/case-file"))
    assert case["case_file"]["evidence"][0]["sha256"] == evidence["sha256"]
    # Every snapshot taken is in the evidence, by id and digest, the takedown last.
    async with sessionmaker() as session:
        rows = (
            await session.exec(select(MetricSnapshot).where(MetricSnapshot.campaign_id == cid))
        ).all()
    assert rows and not rows[-1].reachable
    for row in rows:
        assert f'"id": {row.id}' in evidence["text"] and row.sha256 in evidence["text"]


async def test_integration_snapshots_need_a_live_key_and_reach_the_workflow(
    api, trio, metrics_service, sessionmaker
):
    brand, creator, _ = trio
    url = metrics_service.publish("ext", views=0)
    # The provider is down for this post: its polls fail (and never count as a takedown),
    # so the integration is the only source.
    metrics_service.fail("ext")
    cid = await tracked(
        brand,
        creator,
        url,
        live_for="PT60S",
        objectives=views(1_000, "PT60S"),
        payout_rule={"kind": "pro_rata"},
    )
    path = f"/v1/campaigns/{cid}/deliverables/0/metrics"
    report = {"metrics": {"views": 400, "likes": 3}}

    async def snapshots() -> int:
        async with sessionmaker() as session:
            query = (
                select(func.count())
                .select_from(MetricSnapshot)
                .where(MetricSnapshot.source.like("integration:%"))
            )
            return (await session.exec(query)).one()

    before = await snapshots()
    # No key, a wrong key, a party's key, the admin's token: 401, nothing recorded.
    async with api.as_party("pik_wrong") as wrong:
        assert_problem(await wrong.post(path, json=report), 401, "unauthorized")
    assert_problem(await brand.client.post(path, json=report), 401, "unauthorized")
    assert_problem(await api.http.post(path, json=report), 401, "unauthorized")
    # Only the admin issues keys.
    assert_problem(
        await brand.client.post("/v1/integrations", json={"name": "x"}), 403, "forbidden"
    )
    issued = await ok(await api.http.post("/v1/integrations", json={"name": "analytics"}), 201)
    assert issued["api_key"].startswith("pik_") and issued["revoked_at"] is None
    async with api.as_party(issued["api_key"]) as integration:
        # Only contracted metric names, strict non-negative integers.
        for bad in (
            {"metrics": {"reach": 5}},
            {"metrics": {"views": -1}},
            {"metrics": {"views": "5"}},
            {"metrics": {"views": 1.5}},
        ):
            assert_problem(await integration.post(path, json=bad), 422, "validation_error")
        accepted = await ok(await integration.post(path, json=report), 202)
        assert accepted["figures"] == {"views": 400, "likes": 3}
        assert len(accepted["sha256"]) == 64
        state = await ok(await brand.client.get(f"/v1/campaigns/{cid}"))
        # The quarter passed is recorded: progress shows on the resource.
        progress = state["deliverables"][0]["objectives"][0]["progress"]
        assert progress["achieved"] == 400 and not progress["met"]
        assert await snapshots() == before + 1
        assert state["deliverables"][0]["tracking"]["reachable"]
        assert state["deliverables"][0]["tracking"]["snapshot_id"] == accepted["id"]

        await ok(await api.http.post(f"/v1/integrations/{issued['id']}/revoke"), 200)
        assert_problem(await integration.post(path, json=report), 401, "unauthorized")
    assert await snapshots() == before + 1
