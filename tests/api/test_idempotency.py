"""Idempotency-Key on POST (SPEC §8): replay, mismatch, concurrency."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import Request
from sqlalchemy import func
from sqlmodel import select

from db.models import Party
from tests.api.test_parties import assert_problem


async def _count_named(sessionmaker, name: str) -> int:
    async with sessionmaker() as session:
        return (await session.exec(select(func.count()).where(Party.name == name))).one()


async def test_replay_returns_identical_response_and_creates_nothing(api, sessionmaker):
    name = f"brand-{uuid.uuid4().hex}"
    body = {"name": name, "role": "brand", "email": "b@x.io"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = await api.http.post("/v1/parties", json=body, headers=headers)
    second = await api.http.post("/v1/parties", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content  # byte for byte, including the one-time key
    assert second.headers["idempotent-replayed"] == "true"
    assert await _count_named(sessionmaker, name) == 1


async def test_same_key_other_body_is_422_and_changes_nothing(api, sessionmaker):
    key = uuid.uuid4().hex
    name = f"brand-{uuid.uuid4().hex}"
    first = await api.http.post(
        "/v1/parties",
        json={"name": name, "role": "brand", "email": "b@x.io"},
        headers={"Idempotency-Key": key},
    )
    assert first.status_code == 201
    other = await api.http.post(
        "/v1/parties",
        json={"name": name + "-other", "role": "brand", "email": "b@x.io"},
        headers={"Idempotency-Key": key},
    )
    assert_problem(other, 422, "idempotency_key_reused")
    assert await _count_named(sessionmaker, name + "-other") == 0


async def test_concurrent_requests_with_one_key_have_one_effect(api, sessionmaker):
    name = f"brand-{uuid.uuid4().hex}"
    body = {"name": name, "role": "brand", "email": "b@x.io"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    responses = await asyncio.gather(
        *(api.http.post("/v1/parties", json=body, headers=headers) for _ in range(8))
    )
    created = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_flight) == 8
    assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
    for response in in_flight:
        assert_problem(response, 409, "idempotency_in_flight")
    assert await _count_named(sessionmaker, name) == 1


async def test_keys_are_per_caller(api, make_party):
    brand = await make_party("brand")
    key = uuid.uuid4().hex
    as_admin = await api.http.post(
        "/v1/parties",
        json={"name": "a", "role": "creator", "email": "a@x.io"},
        headers={"Idempotency-Key": key},
    )
    as_brand = await brand.client.post(
        "/v1/parties",
        json={"name": "b", "role": "creator", "email": "a@x.io"},
        headers={"Idempotency-Key": key},
    )
    assert as_admin.status_code == 201
    assert_problem(as_brand, 403, "forbidden")  # not a replay of the admin's response


async def test_errors_are_replayed_too(api, make_party):
    """A refused request is an answer: replaying it refuses again without re-running."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    bad = {"name": "x", "role": "wizard", "email": "x@y.io"}
    first = await api.http.post("/v1/parties", json=bad, headers=key)
    second = await api.http.post("/v1/parties", json=bad, headers=key)
    assert_problem(first, 422, "validation_error")
    assert second.content == first.content


async def test_a_retry_after_a_definite_5xx_is_a_new_update_and_after_an_unknown_outcome_the_same(
    temporal_env, settings, worker
):
    """Issue #10 item 7: Temporal answers a repeated Update id with its first outcome, a
    failure included, so a retry after `payment_unavailable` must be a new Update; after
    `outcome_unknown` it must be the same one, to learn what happened. A route added for the
    test records the Update id the API would send, and answers as told."""
    from api.errors import ProblemError
    from api.main import create_app
    from api.temporal import retry_anew, update_id
    from tests.conftest import ADMIN_TOKEN, serve

    app = create_app(settings, temporal=temporal_env.client)
    seen: list[str] = []
    answers = ["payment_unavailable", "ok", "outcome_unknown", "ok"]

    @app.post("/test/act")
    async def act(request: Request) -> dict:
        seen.append(update_id(request, "fund"))
        answer = answers[len(seen) - 1]
        if answer == "payment_unavailable":  # as send_update marks the workflow's refusal
            retry_anew(request)
        if answer != "ok":
            raise ProblemError(503, answer, answer)
        return {"update": seen[-1]}

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async for base_url in serve(app):
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            first, second = uuid.uuid4().hex, uuid.uuid4().hex
            for key in (first, first, second, second):
                await http.post("/test/act", json={}, headers={"Idempotency-Key": key})
    assert seen[0] != seen[1]  # the rail was down: the retry acts anew
    assert seen[2] == seen[3]  # the outcome was unknown: the retry learns it


async def test_temporal_refusing_more_updates_is_a_429_with_retry_after(
    temporal_env, settings, worker
):
    """Issue #10 item 8: Temporal's RESOURCE_EXHAUSTED (e.g. an 11th Update in flight on one
    workflow) is the client's cue to slow down, not a 500."""
    from temporalio.service import RPCError, RPCStatusCode

    from api.main import create_app
    from tests.conftest import ADMIN_TOKEN, serve

    app = create_app(settings, temporal=temporal_env.client)

    @app.post("/test/busy")
    async def busy() -> dict:
        raise RPCError("too many outstanding updates", RPCStatusCode.RESOURCE_EXHAUSTED, b"")

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async for base_url in serve(app):
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            response = await http.post("/test/busy", json={})
    assert_problem(response, 429, "too_many_requests")
    assert response.headers["retry-after"] == "2"


async def test_a_5xx_after_the_action_was_sent_keeps_the_same_update(
    temporal_env, settings, worker
):
    """The action reached its workflow, then reading the result failed (a database hiccup):
    the retry must attach to that action, not perform it a second time."""
    from api.errors import ProblemError
    from api.main import create_app
    from api.temporal import update_id
    from tests.conftest import ADMIN_TOKEN, serve

    app = create_app(settings, temporal=temporal_env.client)
    seen: list[str] = []

    @app.post("/test/act-then-fail")
    async def act(request: Request) -> dict:
        seen.append(update_id(request, "submit"))
        if len(seen) == 1:
            raise ProblemError(503, "database_unavailable", "The database is unavailable")
        return {"update": seen[-1]}

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": uuid.uuid4().hex}
    async for base_url in serve(app):
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            first = await http.post("/test/act-then-fail", json={})
            second = await http.post("/test/act-then-fail", json={})
    assert (first.status_code, second.status_code) == (503, 200)
    assert seen[0] == seen[1]


async def test_a_database_that_cannot_take_the_claim_is_a_503_with_retry_after(
    temporal_env, settings
):
    """The claim is written before anything runs; when the database refuses it (down, or
    SQLite locked past its busy timeout under load) the answer is a retryable 503."""
    from api.main import create_app
    from tests.conftest import ADMIN_TOKEN, free_port, serve

    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://parley@127.0.0.1:{free_port()}/none"}
    )
    app = create_app(down, temporal=temporal_env.client)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": uuid.uuid4().hex}
    async for base_url in serve(app):
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            response = await http.post("/v1/parties", json={"name": "x", "role": "brand"})
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"]
