"""An agency acts for a brand (or a creator) only when that party has authorised it (SPEC §1).

The authorisation is a grant the brand or creator issues — or the admin issues for it — and
may revoke. Creation checks it; a running campaign keeps the agency its signed contract names.
"""

from __future__ import annotations

from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_parties import assert_problem


def agency_campaign(brand_id: str, creator_id: str, agency_id: str, represents: str) -> dict:
    return {
        **campaign_body(creator_id, amounts=(4_000,)),
        "brand_id": brand_id,
        "agency_id": agency_id,
        "agency_represents": represents,
    }


async def test_an_agency_cannot_act_for_a_brand_that_never_authorised_it(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    agency = await make_party("agency")
    body = agency_campaign(brand.id, creator.id, agency.id, "brand")

    # Before the fix this was a 201: any agency could name any brand, then fund and file
    # disputes counted as that brand's.
    assert_problem(await agency.client.post("/v1/campaigns", json=body), 403, "forbidden")
    assert (await ok(await brand.client.get("/v1/campaigns")))["items"] == []


async def test_a_brand_grants_lists_and_revokes(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    agency, other_agency = await make_party("agency"), await make_party("agency")
    body = agency_campaign(brand.id, creator.id, agency.id, "brand")

    grant = await ok(
        await brand.client.post("/v1/parties/me/agency-grants", json={"agency_id": agency.id}),
        201,
    )
    assert grant["grantor_id"] == brand.id and grant["agency_id"] == agency.id
    assert grant["grantor_role"] == "brand" and grant["active"] is True
    assert grant["revoked_at"] is None and grant["granted_at"].endswith("Z")
    # Granting again is a no-op answering the live grant.
    again = await brand.client.post("/v1/parties/me/agency-grants", json={"agency_id": agency.id})
    assert again.status_code == 200 and again.json()["granted_at"] == grant["granted_at"]

    listed = await ok(await brand.client.get("/v1/parties/me/agency-grants"))
    assert [(g["agency_id"], g["active"]) for g in listed["items"]] == [(agency.id, True)]
    assert listed["next_cursor"] is None
    held = await ok(await agency.client.get("/v1/parties/me/agency-grants"))
    assert [g["grantor_id"] for g in held["items"]] == [brand.id]
    assert (await ok(await other_agency.client.get("/v1/parties/me/agency-grants")))["items"] == []

    # The granted agency creates and funds for the brand; another agency still may not.
    created = await ok(await agency.client.post("/v1/campaigns", json=body), 201)
    assert created["brand_id"] == brand.id and created["agency_id"] == agency.id
    assert_problem(
        await other_agency.client.post(
            "/v1/campaigns", json=agency_campaign(brand.id, creator.id, other_agency.id, "brand")
        ),
        403,
        "forbidden",
    )
    cid = created["id"]
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )

    revoked = await ok(await brand.client.post(f"/v1/parties/me/agency-grants/{agency.id}/revoke"))
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    again = await ok(await brand.client.post(f"/v1/parties/me/agency-grants/{agency.id}/revoke"))
    assert again["revoked_at"] == revoked["revoked_at"]  # revoking twice changes nothing
    assert_problem(
        await brand.client.post(f"/v1/parties/me/agency-grants/{other_agency.id}/revoke"),
        404,
        "not_found",
    )
    listed = await ok(await brand.client.get("/v1/parties/me/agency-grants"))
    assert [(g["agency_id"], g["active"]) for g in listed["items"]] == [(agency.id, False)]

    # Revocation stops new campaigns; the running one keeps the agency its contract names.
    assert_problem(await agency.client.post("/v1/campaigns", json=body), 403, "forbidden")
    funded = await ok(await agency.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    assert funded["status"] == "active" and funded["agency_id"] == agency.id

    # Granting again restores it.
    await ok(
        await brand.client.post("/v1/parties/me/agency-grants", json={"agency_id": agency.id}),
        201,
    )
    await ok(await agency.client.post("/v1/campaigns", json=body), 201)


async def test_who_may_grant_and_to_whom(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator")
    agency = await make_party("agency")
    mediator = await make_party("mediator")
    grant = {"agency_id": agency.id}

    for party in (agency, mediator):
        assert_problem(
            await party.client.post("/v1/parties/me/agency-grants", json=grant), 403, "forbidden"
        )
    assert_problem(await mediator.client.get("/v1/parties/me/agency-grants"), 403, "forbidden")
    for not_an_agency in (creator.id, "pty_nobody"):
        assert_problem(
            await brand.client.post(
                "/v1/parties/me/agency-grants", json={"agency_id": not_an_agency}
            ),
            422,
            "validation_error",
        )
    # Only the admin speaks for another party; "me" is a party's own.
    assert_problem(
        await brand.client.post(f"/v1/parties/{creator.id}/agency-grants", json=grant),
        403,
        "forbidden",
    )
    assert_problem(
        await brand.client.get(f"/v1/parties/{creator.id}/agency-grants"), 403, "forbidden"
    )
    assert_problem(
        await api.http.post("/v1/parties/me/agency-grants", json=grant), 403, "forbidden"
    )
    assert_problem(
        await api.http.post(f"/v1/parties/{agency.id}/agency-grants", json=grant),
        403,
        "forbidden",
    )
    assert_problem(
        await api.http.post("/v1/parties/pty_nobody/agency-grants", json=grant), 404, "not_found"
    )

    # The admin grants for the brand, lists and revokes it.
    made = await ok(await api.http.post(f"/v1/parties/{brand.id}/agency-grants", json=grant), 201)
    assert made["grantor_id"] == brand.id and made["active"]
    listed = await ok(await api.http.get(f"/v1/parties/{brand.id}/agency-grants"))
    assert [g["agency_id"] for g in listed["items"]] == [agency.id]
    mine = await ok(await brand.client.get("/v1/parties/me/agency-grants"))
    assert [g["agency_id"] for g in mine["items"]] == [agency.id]
    gone = await ok(await api.http.post(f"/v1/parties/{brand.id}/agency-grants/{agency.id}/revoke"))
    assert gone["active"] is False


async def test_an_agency_for_the_creator_needs_the_creators_grant(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    agency = await make_party("agency")
    body = {
        **agency_campaign(brand.id, creator.id, agency.id, "creator"),
        "terms": {**campaign_body(creator.id)["terms"], "agency_commission_bps": 1_000},
    }
    del body["brand_id"]

    # Before the fix the brand could name any agency for the creator, and that agency could
    # accept the contract, deliver and file disputes as the creator without the creator's say.
    assert_problem(await brand.client.post("/v1/campaigns", json=body), 403, "forbidden")
    # A grant from the brand does not speak for the creator.
    await ok(
        await brand.client.post("/v1/parties/me/agency-grants", json={"agency_id": agency.id}),
        201,
    )
    assert_problem(await brand.client.post("/v1/campaigns", json=body), 403, "forbidden")

    await ok(
        await creator.client.post("/v1/parties/me/agency-grants", json={"agency_id": agency.id}),
        201,
    )
    created = await ok(await brand.client.post("/v1/campaigns", json=body), 201)
    assert created["agency_id"] == agency.id
    accepted = await ok(
        await agency.client.post(
            f"/v1/campaigns/{created['id']}/accept",
            json={"contract_hash": created["contract_hash"]},
        )
    )
    assert accepted["status"] == "awaiting_funding"
    # An agency still never creates on the creator's side.
    assert_problem(
        await agency.client.post(
            "/v1/campaigns", json=agency_campaign(brand.id, creator.id, agency.id, "creator")
        ),
        403,
        "forbidden",
    )
