"""One trace from the API request through the Temporal Update to the payment activity.

The worker and the app here use the production wiring (`api.observability.traced`,
`install_tracing`) with an in-memory exporter in place of OTLP; `worker` and `api` are this
module's own versions of the conftest fixtures, so `make_party` runs on them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.main import create_app
from api.observability import install_tracing, traced
from tests.api.test_campaigns import create_and_accept, ok
from tests.conftest import ADMIN_TOKEN, Api, serve
from worker import build_worker


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    install_tracing("parley-test", SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the process's provider stays; later spans go nowhere


@pytest.fixture
async def worker(temporal_env, settings, sessionmaker, spans):
    async with build_worker(traced(temporal_env.client), settings, sessionmaker):
        yield


@pytest.fixture
async def api(temporal_env, settings, worker) -> AsyncIterator[Api]:
    app = create_app(settings, temporal=traced(temporal_env.client))
    async for base_url in serve(app):
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        ) as http:
            yield Api(http=http, base_url=base_url)


async def finished(exporter: InMemorySpanExporter, name: str, timeout: float = 10) -> ReadableSpan:
    """The span once it has ended: the server span ends just after the answer is sent."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [s for s in exporter.get_finished_spans() if s.name == name]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, [
            s.name for s in exporter.get_finished_spans()
        ]
        await asyncio.sleep(0.02)


def ancestry(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """Names from `span` up to its root, following parent span ids."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_fund_request_update_and_charge_share_one_trace(api, make_party, spans):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    cid = (await create_and_accept(brand, creator))["id"]
    spans.clear()

    funded = await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    assert funded["status"] == "active"

    request = await finished(spans, "POST /v1/campaigns/{campaign_id}/fund")
    assert request.attributes["http.response.status_code"] == 200
    charge = await finished(spans, "RunActivity:fund_campaign")
    trace_id = request.context.trace_id
    in_trace = {s.context.span_id: s for s in spans.get_finished_spans()}
    in_trace = {i: s for i, s in in_trace.items() if s.context.trace_id == trace_id}
    names = {s.name for s in in_trace.values()}
    assert {
        "StartWorkflowUpdate:fund",  # the API's client call
        "HandleUpdate:fund",  # the workflow's Update handler, on the worker
        "StartActivity:fund_campaign",
        "RunActivity:fund_campaign",  # the payment activity
    } <= names, names
    assert charge.context.trace_id == trace_id
    # Not only the same trace: each is the child of the one before.
    assert ancestry(charge, in_trace) == [
        "RunActivity:fund_campaign",
        "StartActivity:fund_campaign",
        "HandleUpdate:fund",
        "StartWorkflowUpdate:fund",
        "fastapi.endpoint",
        "POST /v1/campaigns/{campaign_id}/fund",  # FastAPI's server span for the request
    ]


async def test_a_callers_traceparent_is_the_request_spans_parent(api, spans):
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = await api.http.get(
        "/v1/parties/me", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert response.status_code in (200, 403, 404), response.text
    span = await finished(spans, "GET /v1/parties/me")
    assert f"{span.context.trace_id:032x}" == trace_id
    assert f"{span.parent.span_id:016x}" == parent_id
