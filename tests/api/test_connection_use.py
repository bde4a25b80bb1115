"""A request waiting on Temporal holds no database connection (issue #10 and #13): the pool
is for reads and writes, which take milliseconds, not for waits, which take seconds."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from api.main import create_app
from tests.api.test_campaigns import campaign_body
from tests.conftest import serve

WAITERS = 20  # more than the pool's connections on SQLite (5 + 10 overflow)


async def test_requests_waiting_on_temporal_leave_the_pool_to_others(
    temporal_env, settings, make_party
):
    brand = await make_party("brand")
    creator = await make_party("creator")
    # An app whose campaigns go to a task queue no worker polls, with Temporal calls bounded
    # above the pool's own wait (30 s): a create waits for as long as that bound.
    stalled = settings.model_copy(
        update={"task_queue": f"nobody-{uuid.uuid4().hex}", "temporal_rpc_timeout_seconds": 35}
    )
    async for base_url in serve(create_app(stalled, temporal=temporal_env.client)):
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {brand.api_key}"}, timeout=90
        ) as http:
            body = campaign_body(creator.id)
            waiting = [
                asyncio.ensure_future(http.post("/v1/campaigns", json=body)) for _ in range(WAITERS)
            ]
            # Once every create's workflow exists, every create is waiting on its Update.
            query = f'TaskQueue = "{stalled.task_queue}"'
            while (await temporal_env.client.count_workflows(query)).count < WAITERS:
                assert not any(t.done() for t in waiting), [t.result().text for t in waiting]
                await asyncio.sleep(0.1)
            me = await http.get("/v1/parties/me")
            assert me.status_code == 200, me.text
            answers = await asyncio.gather(*waiting)
    # Every create was held by Temporal (not by the pool) and says so: 503 outcome_unknown.
    assert {a.status_code for a in answers} == {503}, [a.text[:200] for a in answers]
    assert {a.json()["code"] for a in answers} == {"outcome_unknown"}
