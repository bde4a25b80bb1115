"""Request-scoped dependencies: settings, database session, Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from config import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# The request's session, for `end_reads` (set in the request's own context: no other sees it).
_request_session: ContextVar[AsyncSession | None] = ContextVar("request_session", default=None)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        _request_session.set(session)
        yield session


async def end_reads() -> None:
    """Before the request waits on Temporal (seconds, or the whole RPC bound when a worker is
    down): its read transaction ends and its connection goes back to the pool, so waiting
    requests never starve the others of connections. Loaded objects stay usable (sessions
    do not expire them on commit); a later read takes a connection again. A session holding
    changes not yet committed keeps them: the route commits them itself."""
    session = _request_session.get()
    if session is None or not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted:
        return
    await session.commit()


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
