"""Live delivery of campaign messages to open SSE streams, across API processes.

On PostgreSQL every process LISTENs on one channel and a new message is announced with
NOTIFY in the transaction that stores it, so each process wakes its own streams; on SQLite
(one embedded process) the announcement stays in-process. Streams then read the rows from
the database, so the notification carries only ids and a missed wake-up loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import psycopg
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import is_sqlite

log = logging.getLogger("parley.messages")

CHANNEL = "parley_messages"


class MessageBus:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.postgres = not is_sqlite(database_url)
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task | None = None

    async def start(self) -> None:
        if self.postgres:
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def announce(self, session: AsyncSession, campaign_id: str) -> None:
        """Call inside the transaction that stores the message (before commit)."""
        if self.postgres:
            await session.exec(select(func.pg_notify(CHANNEL, campaign_id)))

    def delivered(self, campaign_id: str) -> None:
        """After commit: wake this process's streams (PostgreSQL wakes them via LISTEN)."""
        if not self.postgres:
            self._wake(campaign_id)

    @contextlib.contextmanager
    def subscription(self, campaign_id: str):
        """An event set whenever the campaign's thread may have grown."""
        event = asyncio.Event()
        self._waiters[campaign_id].add(event)
        try:
            yield event
        finally:
            self._waiters[campaign_id].discard(event)
            if not self._waiters[campaign_id]:
                del self._waiters[campaign_id]

    def _wake(self, campaign_id: str) -> None:
        for event in self._waiters.get(campaign_id, ()):
            event.set()

    async def _listen(self) -> None:
        conninfo = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        while True:  # reconnect after a database restart
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Anything stored while we were not listening: wake every stream once.
                    for campaign_id in list(self._waiters):
                        self._wake(campaign_id)
                    async for notify in conn.notifies():
                        self._wake(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("message listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(1)
