"""`GET /v1/campaigns/{id}/events`: the campaign's timeline as Server-Sent Events (issue #15).

The entries are written by the worker's record activity (another connection, in production
another process): the stream hears of them through the bus — PostgreSQL's NOTIFY from the
timeline's trigger, SQLite's poll of new rows — and reads them from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest

from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_parties import assert_problem

WORK = {"url": "https://instagram.com/p/x", "notes": "", "metrics": {}}


@pytest.fixture
async def funded(make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    stranger = await make_party("brand")
    created = await ok(
        await brand.client.post("/v1/campaigns", json=campaign_body(creator.id)), 201
    )
    cid = created["id"]
    accept = {"contract_hash": created["contract_hash"]}
    await ok(await creator.client.post(f"/v1/campaigns/{cid}/accept", json=accept))
    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    return brand, creator, stranger, cid


async def open_events(client: httpx.AsyncClient, cid: str, stack, **kwargs):
    response = await stack.enter_async_context(
        client.stream("GET", f"/v1/campaigns/{cid}/events", **kwargs)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = response.aiter_lines()
    assert await anext(lines) == ": connected"  # subscribed: what happens now arrives
    return lines


async def next_entry(lines) -> tuple[int, str, dict]:
    """The next event of an SSE stream: its id, name and JSON data (comments skipped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if "data" in fields:
                return int(fields["id"]), fields["event"], json.loads(fields["data"])
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    raise AssertionError("stream ended")


async def test_a_subscriber_sees_a_state_change_within_a_second(api, funded):
    brand, creator, _, cid = funded
    async with contextlib.AsyncExitStack() as stack:
        lines = await open_events(brand.client, cid, stack)
        await ok(await creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=WORK))
        event_id, name, entry = await asyncio.wait_for(next_entry(lines), timeout=1.0)
    assert name == "timeline"
    assert entry["type"] == "deliverable.submitted" and entry["data"]["index"] == 0
    assert entry["id"] == event_id and entry["actor"] == creator.id
    # The same entry as the timeline serves it.
    timeline = await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline"))
    assert timeline["items"][-1] == entry


async def test_last_event_id_resumes_after_what_was_seen(api, funded):
    brand, creator, _, cid = funded
    submit = f"/v1/campaigns/{cid}/deliverables/{{}}/submit"
    async with contextlib.AsyncExitStack() as stack:
        lines = await open_events(creator.client, cid, stack)
        await ok(await creator.client.post(submit.format(0), json=WORK))
        seen, _, first = await asyncio.wait_for(next_entry(lines), timeout=5)
    assert first["type"] == "deliverable.submitted"
    # Disconnected while the second deliverable is submitted; the reconnect names the last
    # entry it saw, as an EventSource does.
    await ok(await creator.client.post(submit.format(1), json=WORK))
    async with contextlib.AsyncExitStack() as stack:
        lines = await open_events(creator.client, cid, stack, headers={"Last-Event-ID": str(seen)})
        resumed, _, entry = await asyncio.wait_for(next_entry(lines), timeout=5)
    assert resumed > seen
    assert entry["type"] == "deliverable.submitted" and entry["data"]["index"] == 1
    # `?after=0` replays the whole timeline, oldest first.
    async with contextlib.AsyncExitStack() as stack:
        lines = await open_events(brand.client, cid, stack, params={"after": 0})
        replayed = [await asyncio.wait_for(next_entry(lines), timeout=5) for _ in range(3)]
    timeline = await ok(await brand.client.get(f"/v1/campaigns/{cid}/timeline"))
    assert [e for _, _, e in replayed] == timeline["items"][:3]


async def test_strangers_get_404_and_bad_resume_points_422(api, funded):
    brand, _, stranger, cid = funded
    events = f"/v1/campaigns/{cid}/events"
    assert_problem(await stranger.client.get(events), 404, "not_found")
    assert_problem(await stranger.client.get("/v1/campaigns/cmp_nope/events"), 404, "not_found")
    assert_problem(await brand.client.get(events, params={"after": -1}), 422, "validation_error")
    async with api.as_party("prl_wrong") as anonymous:
        assert_problem(await anonymous.get(events), 401, "unauthorized")
