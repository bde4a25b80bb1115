"""The ledger through the API (SPEC §9): every leg a campaign moved, for its parties and
the admin; the admin's whole ledger with filters."""

from __future__ import annotations

from tests.api.test_campaigns import WORK, create_and_fund, ok, until
from tests.api.test_parties import assert_problem


async def test_a_campaigns_legs_add_up_and_only_its_people_see_them(api, trio):
    brand, creator, stranger = trio
    cid = (await create_and_fund(brand, creator))["id"]
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=WORK))
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/deliverables/0/approve"))
    campaign = await until(
        brand.client, cid, lambda c: c["deliverables"][0]["status"] == "released"
    )

    ledger = await ok(await creator.client.get(f"/v1/campaigns/{cid}/ledger"))
    legs = [(m["kind"], m["amount"], m["state"]) for m in ledger["items"]]
    fee = campaign["escrow"]["platform_fee"]
    assert legs == [
        ("fund", 15_000, "succeeded"),
        ("release", 10_000 - fee, "succeeded"),
        ("fee", fee, "succeeded"),
    ]
    assert [m["idempotency_key"] for m in ledger["items"]] == [
        f"{cid}:fund",
        f"{cid}:release:0:creator",
        f"{cid}:release:0:fee",
    ]
    fund, release, kept = ledger["items"]
    assert fund["rail_reference"] and release["rail_reference"] and kept["rail_reference"] is None
    assert fund["created_at"].endswith("Z")
    escrow = campaign["escrow"]
    assert fund["amount"] == escrow["held"] + release["amount"] + kept["amount"]
    assert_problem(await stranger.client.get(f"/v1/campaigns/{cid}/ledger"), 404, "not_found")

    page = await ok(await creator.client.get(f"/v1/campaigns/{cid}/ledger", params={"limit": 2}))
    rest = await ok(
        await creator.client.get(
            f"/v1/campaigns/{cid}/ledger", params={"cursor": page["next_cursor"]}
        )
    )
    assert [m["id"] for m in page["items"] + rest["items"]] == [m["id"] for m in ledger["items"]]

    fees = await ok(await api.http.get("/v1/ledger", params={"campaign_id": cid, "kind": "fee"}))
    assert [m["amount"] for m in fees["items"]] == [fee]
    assert_problem(await brand.client.get("/v1/ledger"), 403, "forbidden")
    assert_problem(await api.http.get("/v1/ledger", params={"kind": "x"}), 422, "validation_error")
