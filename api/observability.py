"""Operating the API (issue #14): Prometheus `/metrics`, JSON log lines that carry the
request id, the calling party and the workflow a request acted on, and OpenTelemetry traces
that follow a request through Temporal into the activities it runs.

Request metrics are counted in-process by route template (never the raw path: ids would
explode the label set). Business figures — money moved by kind and currency, campaigns by
status, disputes by stage, notification deliveries that failed — are read from the database
when `/metrics` is scraped, so every API replica reports the same totals.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, or_
from sqlmodel import select
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.contrib.opentelemetry import (
    OpenTelemetryInterceptor,
    ReplaySafeTracerProvider,
    create_tracer_provider,
)

from db.models import CampaignRecord, DisputeRecord, LedgerEntry, Notification

REQUEST_ID_HEADER = "x-request-id"
request_id: ContextVar[str | None] = ContextVar("parley_request_id", default=None)
party_id: ContextVar[str | None] = ContextVar("parley_party_id", default=None)
workflow_id: ContextVar[str | None] = ContextVar("parley_workflow_id", default=None)


# --- logs --------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's ids, and the
    exception's type and message (a traceback only for unexpected errors, at ERROR)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (
            ("request_id", request_id),
            ("party_id", party_id),
            ("workflow_id", workflow_id),
        ):
            if (value := getattr(record, name, None) or var.get()) is not None:
                line[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = f"{type(error).__name__}: {error}"
            if record.levelno >= logging.ERROR:
                line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


JsonFormatter.converter = time.gmtime  # UTC, as the `Z` says


def configure_json_logs(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the root logger (uvicorn's access log included); called by
    the process that serves the API (`api.main.serve_app` / `make dev`), not by tests."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# --- metrics -----------------------------------------------------------------------------------


class Metrics:
    """The app's own registry (one per app, so tests' apps never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "parley_http_requests",
            "HTTP requests by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "parley_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ("route", "method"),
            registry=self.registry,
        )
        self.money = Gauge(
            "parley_money_moved_minor_units",
            "Money the rails moved (succeeded ledger legs), by kind and currency",
            ("kind", "currency"),
            registry=self.registry,
        )
        self.campaigns = Gauge(
            "parley_campaigns", "Campaigns by status", ("status",), registry=self.registry
        )
        self.disputes = Gauge(
            "parley_disputes", "Disputes by stage", ("stage",), registry=self.registry
        )
        self.notification_failures = Gauge(
            "parley_notification_delivery_failures",
            "Notifications whose email or webhook delivery failed",
            registry=self.registry,
        )

    async def refresh(self, sessionmaker) -> None:
        async with sessionmaker() as session:
            moved = await session.exec(
                select(LedgerEntry.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount))
                .where(LedgerEntry.state == "succeeded")
                .group_by(LedgerEntry.kind, LedgerEntry.currency)
            )
            self.money.clear()
            for kind, currency, amount in moved.all():
                self.money.labels(kind, currency).set(amount or 0)
            self.campaigns.clear()
            by_status = select(CampaignRecord.status, func.count()).group_by(CampaignRecord.status)
            for status, count in (await session.exec(by_status)).all():
                self.campaigns.labels(status).set(count)
            self.disputes.clear()
            by_stage = select(DisputeRecord.stage, func.count()).group_by(DisputeRecord.stage)
            for stage, count in (await session.exec(by_stage)).all():
                self.disputes.labels(stage).set(count)
            failed = select(func.count()).where(
                or_(Notification.email_state == "failed", Notification.webhook_state == "failed")
            )
            self.notification_failures.set((await session.exec(failed)).one())


class ObservabilityMiddleware:
    """Gives every request an id (the caller's `X-Request-ID`, or a new one), answers it in
    the same header, and counts the request by its route template. (The request's server span
    is FastAPI's own: `fastapi.telemetry`, a child of the caller's W3C `traceparent`.)"""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"")
        rid = incoming.decode("latin-1")[:100] if incoming else secrets.token_hex(8)
        tokens = (request_id.set(rid), party_id.set(None), workflow_id.set(None))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)
            for var, token in zip((request_id, party_id, workflow_id), tokens, strict=True):
                var.reset(token)


def install_observability(app: FastAPI) -> None:
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus text exposition (not an API operation: no key, for the scraper)."""
        await metrics.refresh(request.app.state.sessionmaker)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


# --- traces ------------------------------------------------------------------------------------

_exporting_otlp = False


def install_tracing(service_name: str, processor: SpanProcessor | None = None) -> None:
    """Makes this process's spans go somewhere: `processor`, or batches over OTLP/HTTP to the
    standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (headers, timeouts and the rest from the
    other OTEL_* variables, read by the exporter itself).

    The global tracer provider is Temporal's replay-safe one (created once per process): the
    SDK's interceptor asks for it, since spans opened inside a workflow must get the same ids
    when the workflow replays. `OTEL_SERVICE_NAME` overrides `service_name`."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, ReplaySafeTracerProvider):
        name = os.environ.get("OTEL_SERVICE_NAME") or service_name
        provider = create_tracer_provider(resource=Resource.create({"service.name": name}))
        trace.set_tracer_provider(provider)
        logging.getLogger("opentelemetry.context").addFilter(_evicted_workflow_context)
    if processor is None:
        global _exporting_otlp
        if _exporting_otlp:  # once per process, however many apps it builds
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
        _exporting_otlp = True
    provider.add_span_processor(processor)


def _evicted_workflow_context(record: logging.LogRecord) -> bool:
    """Drops one known false alarm: when the worker evicts a cached workflow (at shutdown, or
    to make room), Python closes the workflow's coroutine from another context, and the
    interceptor's still-open `RunWorkflow:` span cannot detach its context there. Nothing is
    lost (the workflow resumes by replay elsewhere); OpenTelemetry would log a traceback."""
    error = record.exc_info[1] if record.exc_info else None
    return not (
        record.getMessage() == "Failed to detach context"
        and isinstance(error, ValueError)
        and "different Context" in str(error)
    )


def traced(client: Client) -> Client:
    """The same client with the Temporal SDK's OpenTelemetry interceptor: its calls carry the
    current trace in their headers, and a worker built from it opens spans for the workflow
    code and activities it runs under that trace (needs `install_tracing` first).

    `OpenTelemetryInterceptor`, not the older `TracingInterceptor`: that one parents every
    Update handler under the span that *started* the workflow (weeks earlier, for a campaign)
    and only links the Update's sender, so a request's trace would stop at the Update call.
    This one parents `HandleUpdate:` and the activities it runs under the sender's span."""
    config = client.config()
    interceptors = [*config["interceptors"], OpenTelemetryInterceptor(add_temporal_spans=True)]
    return Client(**{**config, "interceptors": interceptors})
