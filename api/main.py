"""The FastAPI application: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api.body_limit import BodyLimitMiddleware
from api.deadlines import with_deadlines
from api.errors import install_error_handlers
from api.idempotency import IdempotencyMiddleware
from api.message_bus import MessageBus
from api.observability import (
    configure_json_logs,
    install_observability,
    install_tracing,
    traced,
)
from api.openapi import install_docs, install_openapi, operation_id, refuse_unknown_query
from api.routes import (
    admin,
    campaigns,
    console,
    disputes,
    grants,
    health,
    ledger,
    mediators,
    messages,
    metrics,
    notifications,
    parties,
    reviews,
    webhooks,
)
from api.text_guard import refuse_nul
from config import Settings, connect_temporal, get_settings
from db.engine import make_engine, make_sessionmaker


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    """Build the app; the engine and Temporal client live for the app's lifespan."""
    settings = settings or get_settings()
    if os.environ.get("PARLEY_LOG_FORMAT") == "json":
        configure_json_logs()
    if settings.otlp_endpoint:  # the serving process: spans leave over OTLP
        install_tracing("parley-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # A client handed in (tests) comes with the interceptors its caller chose.
        client = temporal or await connect_temporal(settings, lazy=True)
        if temporal is None and settings.otlp_endpoint:
            client = traced(client)
        app.state.temporal = with_deadlines(client, settings.temporal_rpc_timeout_seconds)
        app.state.message_bus = MessageBus(settings.db_url)
        await app.state.message_bus.start()
        try:
            yield
        finally:
            await app.state.message_bus.stop()
            await engine.dispose()

    app = FastAPI(
        dependencies=[Depends(refuse_nul), Depends(refuse_unknown_query)],
        title="Parley",
        version="1.0.0",
        description="Campaign escrow and dispute resolution for influencer marketing.",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets: api/openapi.py
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware)  # before any body is read
    install_observability(app)  # outermost: request ids and metrics for every answer
    app.include_router(health.router)
    app.include_router(parties.router)
    app.include_router(grants.router)
    app.include_router(campaigns.router)
    app.include_router(disputes.router)
    app.include_router(messages.router)
    app.include_router(reviews.router)
    app.include_router(notifications.router)
    app.include_router(webhooks.router)
    app.include_router(ledger.router)
    app.include_router(admin.router)
    app.include_router(admin.integrations)
    app.include_router(metrics.router)
    app.include_router(mediators.router)
    app.include_router(console.router)
    return app
