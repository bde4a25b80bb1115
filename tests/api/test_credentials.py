"""A party's credentials (issue #14): API-key rotation with a grace period, and the admin's
deactivation and reactivation of a party."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import select

from db.models import IdempotencyRecord, Party
from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_parties import assert_problem

ROTATE = "/v1/parties/me/api-key"


async def test_rotation_answers_a_new_key_and_the_old_one_lasts_the_grace(
    api, make_party, sessionmaker
):
    brand = await make_party("brand")
    before = datetime.now(UTC)
    rotated = await ok(await brand.client.post(ROTATE))
    new_key = rotated["api_key"]
    assert new_key.startswith("prl_") and new_key != brand.api_key
    expires = datetime.fromisoformat(rotated["previous_key_expires_at"])
    assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    async with api.as_party(new_key) as fresh:
        assert (await ok(await fresh.get("/v1/parties/me")))["id"] == brand.id
    # The replaced key works through the grace period, but may not rotate again.
    assert (await ok(await brand.client.get("/v1/parties/me")))["id"] == brand.id
    assert_problem(await brand.client.post(ROTATE), 403, "forbidden")
    # Keys are kept hashed, the replaced one too.
    async with sessionmaker() as session:
        party = await session.get(Party, brand.id)
        stored = {party.api_key_hash, party.previous_api_key_hash}
        assert new_key not in stored and brand.api_key not in stored
        # The grace period ends.
        await session.exec(
            update(Party)
            .where(Party.id == brand.id)
            .values(previous_api_key_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    body = assert_problem(await brand.client.get("/v1/parties/me"), 401, "unauthorized")
    assert "grace period has ended" in body["detail"]
    async with api.as_party(new_key) as fresh:
        await ok(await fresh.get("/v1/parties/me"))


async def test_a_replayed_rotation_answers_the_same_key_kept_sealed(api, make_party, sessionmaker):
    brand = await make_party("brand")
    headers = {"Idempotency-Key": "rotate-1"}
    first = await brand.client.post(ROTATE, headers=headers)
    again = await brand.client.post(ROTATE, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    party = {"name": "P", "role": "brand", "email": "p@x.io"}
    created = await api.http.post("/v1/parties", json=party, headers={"Idempotency-Key": "p-1"})
    keys = [first.json()["api_key"].encode(), created.json()["api_key"].encode()]
    async with sessionmaker() as session:
        stored = (await session.exec(select(IdempotencyRecord))).all()
    # No stored answer holds a key in clear: neither the rotation's nor the creation's.
    assert len(stored) >= 2 and all(record.sealed for record in stored)
    assert not any(key in record.response_body for key in keys for record in stored)


async def test_a_second_rotation_ends_the_first_replaced_key_at_once(api, make_party):
    creator = await make_party("creator")
    second = (await ok(await creator.client.post(ROTATE)))["api_key"]
    async with api.as_party(second) as client:
        third = (await ok(await client.post(ROTATE)))["api_key"]
        # The second key is the replaced one now; the first is gone.
        await ok(await client.get("/v1/parties/me"))
    assert_problem(await creator.client.get("/v1/parties/me"), 401, "unauthorized")
    async with api.as_party(third) as client:
        await ok(await client.get("/v1/parties/me"))


async def test_no_grace_configured_means_the_old_key_stops_at_once(api, make_party, settings):
    settings.api_key_grace_seconds = 0  # the app reads this very settings object
    brand = await make_party("brand")
    rotated = await ok(await brand.client.post(ROTATE))
    assert rotated["previous_key_expires_at"] is None
    assert_problem(await brand.client.get("/v1/parties/me"), 401, "unauthorized")
    async with api.as_party(rotated["api_key"]) as client:
        await ok(await client.get("/v1/parties/me"))


async def test_the_admin_token_has_no_key_to_rotate(api):
    assert_problem(await api.http.post(ROTATE), 404, "not_found")


async def test_deactivated_party_is_refused_and_its_campaign_goes_on(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
    )
    cid = created["id"]
    # A key replaced within its grace period is refused as well.
    replacement = (await ok(await brand.client.post(ROTATE)))["api_key"]

    deactivated = await ok(await api.http.post(f"/v1/parties/{brand.id}/deactivate"))
    assert deactivated["id"] == brand.id and deactivated["deactivated_at"].endswith("Z")
    async with api.as_party(replacement) as current:
        for client in (brand.client, current):
            body = assert_problem(await client.get("/v1/parties/me"), 401, "unauthorized")
            assert "deactivated" in body["detail"]
            assert_problem(await client.get(f"/v1/campaigns/{cid}"), 401, "unauthorized")
    # Deactivating again changes nothing; the admin sees it in the list.
    again = await ok(await api.http.post(f"/v1/parties/{brand.id}/deactivate"))
    assert again["deactivated_at"] == deactivated["deactivated_at"]
    listed = await ok(await api.http.get("/v1/parties", params={"role": "brand"}))
    row = next(p for p in listed["items"] if p["id"] == brand.id)
    assert row["deactivated_at"] == deactivated["deactivated_at"]

    # Its campaign is not touched: the creator goes on with it.
    accept = {"contract_hash": created["contract_hash"]}
    accepted = await ok(await creator.client.post(f"/v1/campaigns/{cid}/accept", json=accept))
    assert accepted["status"] == "awaiting_funding"
    assert (await ok(await api.http.get(f"/v1/campaigns/{cid}")))["brand_id"] == brand.id

    reactivated = await ok(await api.http.post(f"/v1/parties/{brand.id}/reactivate"))
    assert reactivated["deactivated_at"] is None
    async with api.as_party(replacement) as current:
        assert (await ok(await current.get("/v1/parties/me")))["deactivated_at"] is None
        await ok(await current.post(f"/v1/campaigns/{cid}/fund", json={}))
    await ok(await brand.client.get("/v1/parties/me"))  # still within its grace period


async def test_only_the_admin_deactivates_a_known_party(api, make_party):
    brand = await make_party("brand")
    other = await make_party("creator")
    for action in ("deactivate", "reactivate"):
        assert_problem(
            await brand.client.post(f"/v1/parties/{other.id}/{action}"), 403, "forbidden"
        )
        assert_problem(await api.http.post(f"/v1/parties/pty_unknown/{action}"), 404, "not_found")
    # A party cannot reach the admin's routes by deactivating itself either.
    assert_problem(await brand.client.post(f"/v1/parties/{brand.id}/deactivate"), 403, "forbidden")
    await ok(await other.client.get("/v1/parties/me"))


async def test_a_new_campaign_cannot_name_a_deactivated_creator(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator2")
    await ok(await api.http.post(f"/v1/parties/{creator.id}/deactivate"))
    refused = assert_problem(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)),
        422,
        "validation_error",
    )
    assert "deactivated" in refused["detail"]
    await ok(await api.http.post(f"/v1/parties/{creator.id}/reactivate"))
    await ok(await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201)
