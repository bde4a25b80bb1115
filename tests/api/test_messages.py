"""The campaign thread: cursor reads, access, and live delivery over SSE."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json

import httpx
import pytest

from api.main import create_app
from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_parties import assert_problem
from tests.conftest import serve


@pytest.fixture
async def thread(make_party):
    brand = await make_party("brand")
    creator = await make_party("creator")
    stranger = await make_party("creator")
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
    )
    return brand, creator, stranger, created["id"]


async def next_event(lines) -> dict:
    """The next `data:` of an SSE stream, skipping comments and other fields."""
    async for line in lines:
        if line.startswith("data: "):
            return json.loads(line.removeprefix("data: "))
    raise AssertionError("stream ended")


async def open_stream(client: httpx.AsyncClient, cid: str, stack):
    response = await stack.enter_async_context(
        client.stream("GET", f"/v1/campaigns/{cid}/messages/stream")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = response.aiter_lines()
    assert await anext(lines) == ": connected"  # subscribed: what is posted now arrives
    return lines


async def test_post_list_and_cursor(api, thread):
    brand, creator, _, cid = thread
    for i in range(3):
        author = brand if i % 2 == 0 else creator
        await ok(
            await author.client.post(f"/v1/campaigns/{cid}/messages", json={"body": f"m{i}"}), 201
        )
    first = await ok(await creator.client.get(f"/v1/campaigns/{cid}/messages", params={"limit": 2}))
    rest = await ok(
        await creator.client.get(
            f"/v1/campaigns/{cid}/messages", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    )
    assert [m["body"] for m in first["items"] + rest["items"]] == ["m0", "m1", "m2"]
    assert first["items"][0]["author_id"] == brand.id and rest["next_cursor"] is None


async def test_strangers_and_bad_bodies_are_refused(api, thread):
    brand, _, stranger, cid = thread
    assert_problem(await stranger.client.get(f"/v1/campaigns/{cid}/messages"), 404, "not_found")
    assert_problem(
        await stranger.client.post(f"/v1/campaigns/{cid}/messages", json={"body": "hi"}),
        404,
        "not_found",
    )
    assert_problem(
        await stranger.client.get(f"/v1/campaigns/{cid}/messages/stream"), 404, "not_found"
    )
    for body in ("", "   ", "x" * 5001):
        assert_problem(
            await brand.client.post(f"/v1/campaigns/{cid}/messages", json={"body": body}),
            422,
            "validation_error",
        )
    listed = await ok(await brand.client.get(f"/v1/campaigns/{cid}/messages"))
    assert listed["items"] == []


async def test_an_open_stream_reads_a_posted_message_within_a_second(api, thread):
    brand, creator, _, cid = thread
    async with contextlib.AsyncExitStack() as stack:
        lines = await open_stream(creator.client, cid, stack)
        posted = await ok(
            await brand.client.post(f"/v1/campaigns/{cid}/messages", json={"body": "live?"}), 201
        )
        event = await asyncio.wait_for(next_event(lines), timeout=1.0)
    assert event == posted


# PostgreSQL only: the embedded SQLite stack is one process, where delivery is in-process.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_delivery_across_api_processes(api, thread, settings, temporal_env):
    """Two API instances, each with its own bus: PostgreSQL's NOTIFY carries the message."""
    brand, creator, _, cid = thread
    async for other_url in serve(create_app(settings, temporal=temporal_env.client)):
        async with contextlib.AsyncExitStack() as stack:
            other = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=other_url, headers={"Authorization": f"Bearer {creator.api_key}"}
                )
            )
            lines = await open_stream(other, cid, stack)
            posted = await ok(
                await brand.client.post(f"/v1/campaigns/{cid}/messages", json={"body": "hop"}), 201
            )
            event = await asyncio.wait_for(next_event(lines), timeout=1.0)
    assert event == posted


async def test_a_message_cited_as_evidence(api, thread):
    brand, creator, _, cid = thread
    await ok(
        await creator.client.post(
            f"/v1/campaigns/{cid}/accept",
            json={
                "contract_hash": (await ok(await brand.client.get(f"/v1/campaigns/{cid}")))[
                    "contract_hash"
                ]
            },
        )
    )  # noqa: E501
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund"))
    said = await ok(
        await creator.client.post(f"/v1/campaigns/{cid}/messages", json={"body": "posting Friday"}),
        201,
    )
    dispute = await ok(
        await brand.client.post(
            f"/v1/campaigns/{cid}/disputes",
            json={
                "reason": "late",
                "claim": {"release_to_creator": 0, "refund_to_brand": 15_000},
                "statement": "Promised Friday, nothing.",
            },
        ),
        201,
    )
    did = dispute["id"]
    cited = await ok(
        await brand.client.post(
            f"/v1/disputes/{did}/evidence", json={"kind": "message", "message_id": said["id"]}
        ),
        201,
    )
    assert cited["text"] == "posting Friday"
    assert cited["sha256"] == hashlib.sha256(b"posting Friday").hexdigest()
    assert_problem(
        await brand.client.post(
            f"/v1/disputes/{did}/evidence", json={"kind": "message", "message_id": "msg_nope"}
        ),
        422,
        "validation_error",
    )
    case = await ok(await brand.client.get(f"/v1/disputes/{did}/case-file"))
    assert [m["message_id"] for m in case["case_file"]["messages"]] == [said["id"]]
