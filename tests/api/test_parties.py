"""Parties, auth and problem+json over real HTTP, on every database."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["title"] and body["detail"]
    return body


async def test_admin_creates_party_and_key_works(api, make_party):
    brand = await make_party("brand", webhook_url="https://brand.example/hooks")
    me = await brand.client.get("/v1/parties/me")
    assert me.status_code == 200
    assert me.json()["id"] == brand.id and me.json()["role"] == "brand"
    assert me.json()["webhook_url"] == "https://brand.example/hooks"
    other = await make_party("creator")
    profile = await brand.client.get(f"/v1/parties/{other.id}")
    assert profile.status_code == 200 and profile.json()["role"] == "creator"
    assert "email" not in profile.json()  # a stranger's contact details stay private


async def test_webhook_secret_only_when_webhook_registered(api):
    with_hook = await api.http.post(
        "/v1/parties",
        json={"name": "B", "role": "brand", "email": "b@x.io", "webhook_url": "https://h.io/x"},
    )
    without = await api.http.post(
        "/v1/parties", json={"name": "C", "role": "creator", "email": "c@x.io"}
    )
    assert with_hook.json()["webhook_secret"].startswith("whsec_")
    assert without.json()["webhook_secret"] is None
    assert with_hook.json()["api_key"] != without.json()["api_key"]


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer"])
async def test_missing_or_bad_key_is_401(api, header):
    headers = {"Authorization": header} if header else {}
    async with api.as_party("x") as client:
        client.headers.pop("Authorization")
        response = await client.get("/v1/parties/me", headers=headers)
    assert_problem(response, 401, "unauthorized")


async def test_brand_cannot_create_parties(api, make_party):
    brand = await make_party("brand")
    response = await brand.client.post(
        "/v1/parties", json={"name": "X", "role": "creator", "email": "x@y.io"}
    )
    assert_problem(response, 403, "forbidden")


async def test_malformed_json_and_unknown_role_are_422(api):
    broken = await api.http.post(
        "/v1/parties", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = assert_problem(broken, 422, "validation_error")
    assert body["errors"]
    unknown = await api.http.post(
        "/v1/parties", json={"name": "X", "role": "wizard", "email": "x@y.io"}
    )
    body = assert_problem(unknown, 422, "validation_error")
    assert any(e["loc"][-1] == "role" for e in body["errors"])


async def test_unknown_party_and_route_are_problem_404(api, make_party):
    brand = await make_party("brand")
    assert_problem(await brand.client.get("/v1/parties/pty_missing"), 404, "not_found")
    assert_problem(await brand.client.get("/v1/nowhere"), 404, "not_found")
    assert_problem(await brand.client.delete("/v1/parties/me"), 405, "method_not_allowed")


async def test_healthz(api):
    response = await api.http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_both_components(api):
    response = await api.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_a_replayed_create_answers_the_same_status_body_and_location(api, make_party):
    from tests.api.test_campaigns import campaign_body

    creator = await make_party("creator")
    brand = await make_party("brand")
    creates = [
        (api.http, "/v1/parties", {"name": "P", "role": "brand", "email": "p@x.io"}),
        (brand.client, "/v1/campaigns", campaign_body(creator.id)),
    ]
    for client, path, body in creates:
        headers = {"Idempotency-Key": f"create-{path}"}
        first = await client.post(path, json=body, headers=headers)
        again = await client.post(path, json=body, headers=headers)
        assert first.status_code == again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["location"] == first.headers["location"]
        assert first.headers["location"].endswith("/" + first.json()["id"])
