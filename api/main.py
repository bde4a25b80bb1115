"""The FastAPI application: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api.body_limit import BodyLimitMiddleware
from api.deadlines import with_deadlines
from api.errors import install_error_handlers
from api.idempotency import IdempotencyMiddleware
from api.message_bus import MessageBus
from api.routes import (
    admin,
    campaigns,
    disputes,
    grants,
    health,
    ledger,
    mediators,
    messages,
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        client = temporal or await connect_temporal(settings, lazy=True)
        app.state.temporal = with_deadlines(client, settings.temporal_rpc_timeout_seconds)
        app.state.message_bus = MessageBus(settings.db_url)
        await app.state.message_bus.start()
        try:
            yield
        finally:
            await app.state.message_bus.stop()
            await engine.dispose()

    app = FastAPI(
        dependencies=[Depends(refuse_nul)],
        title="Parley",
        version="1.0.0",
        description="Campaign escrow and dispute resolution for influencer marketing.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware)  # added last: outermost, before any body is read
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
    app.include_router(mediators.router)
    return app
