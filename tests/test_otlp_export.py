"""Spans leave over OTLP/HTTP when the standard endpoint is configured (issue #14): a process
that installs tracing as the API and the worker do sends its spans, as protobuf, to a
receiver listening where OTEL_EXPORTER_OTLP_ENDPOINT says."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import serve

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
from opentelemetry import trace
from api.observability import install_tracing
install_tracing("parley-otlp-probe")
with trace.get_tracer("probe").start_as_current_span("probe-span"):
    pass
assert trace.get_tracer_provider().force_flush(10_000)
"""


async def test_spans_are_exported_to_the_configured_otlp_endpoint():
    received: list[tuple[str, str, bytes]] = []

    async def receiver(scope, receive, send):  # an OTLP/HTTP collector's traces endpoint
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        received.append((scope["path"], content_type, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async for base_url in serve(receiver):
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": base_url}
        probe = await asyncio.create_subprocess_exec(sys.executable, "-c", PROBE, cwd=ROOT, env=env)
        assert await asyncio.wait_for(probe.wait(), 60) == 0
    assert [(path, kind) for path, kind, _ in received] == [
        ("/v1/traces", "application/x-protobuf")
    ]
    body = received[0][2]
    assert b"probe-span" in body and b"parley-otlp-probe" in body
