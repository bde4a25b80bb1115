"""Live delivery to open SSE streams, across processes: a campaign's messages and its
timeline (`GET …/messages/stream`, `GET …/events`).

Each stream reads its rows from the database; the bus only wakes it when the campaign's feed
may have grown, so a notification carries only the campaign id and a missed wake-up loses
nothing (the stream reads from its last id).

- PostgreSQL: every process LISTENs on one channel per feed. A message is announced with
  NOTIFY in the transaction that stores it (`announce`); a timeline entry by a trigger on its
  table (migration 0007), whatever process writes it (the worker's activities do).
- SQLite: a message posted here wakes this process's streams at once (`delivered`); and while
  a feed has streams open, the bus polls the table for rows written by other connections —
  the worker process writes the timeline — and wakes the campaigns that gained some.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import is_sqlite, make_engine
from db.models import Message, TimelineEvent

log = logging.getLogger("parley.messages")

KEEP_ALIVE_SECONDS = 15
POLL_SECONDS = 0.25  # SQLite: how often new rows from other connections are looked for
BATCH = 100


@dataclass(frozen=True)
class Feed:
    """Rows of a campaign, in the order of an increasing integer key (the SSE `id:`)."""

    channel: str  # the PostgreSQL NOTIFY channel
    model: type[SQLModel]  # has `campaign_id`
    key: str

    @property
    def column(self):
        return getattr(self.model, self.key)


MESSAGES = Feed("parley_messages", Message, "seq")
# The channel is also in migration 0007's trigger.
TIMELINE = Feed("parley_timeline", TimelineEvent, "id")
FEEDS = (MESSAGES, TIMELINE)


class MessageBus:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.postgres = not is_sqlite(database_url)
        self._waiters: dict[tuple[Feed, str], set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen() if self.postgres else self._poll())

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def announce(
        self, session: AsyncSession, campaign_id: str, feed: Feed = MESSAGES
    ) -> None:
        """Call inside the transaction that stores the row (before commit)."""
        if self.postgres:
            await session.exec(select(func.pg_notify(feed.channel, campaign_id)))

    def delivered(self, campaign_id: str, feed: Feed = MESSAGES) -> None:
        """After commit: wake this process's streams (PostgreSQL wakes them via LISTEN)."""
        if not self.postgres:
            self._wake(feed, campaign_id)

    @contextlib.contextmanager
    def subscription(self, campaign_id: str, feed: Feed = MESSAGES):
        """An event set whenever the campaign's feed may have grown."""
        event = asyncio.Event()
        self._waiters[(feed, campaign_id)].add(event)
        try:
            yield event
        finally:
            self._waiters[(feed, campaign_id)].discard(event)
            if not self._waiters[(feed, campaign_id)]:
                del self._waiters[(feed, campaign_id)]

    def _wake(self, feed: Feed, campaign_id: str) -> None:
        for event in self._waiters.get((feed, campaign_id), ()):
            event.set()

    def _wake_all(self) -> None:
        for feed, campaign_id in list(self._waiters):
            self._wake(feed, campaign_id)

    async def _listen(self) -> None:
        conninfo = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        by_channel = {feed.channel: feed for feed in FEEDS}
        while True:  # reconnect after a database restart
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    for channel in by_channel:
                        await conn.execute(f"LISTEN {channel}")
                    # Anything stored while we were not listening: wake every stream once.
                    self._wake_all()
                    async for notify in conn.notifies():
                        if feed := by_channel.get(notify.channel):
                            self._wake(feed, notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(1)

    async def _poll(self) -> None:
        """SQLite: new rows of the feeds that have streams open, by campaign."""
        engine = make_engine(self.database_url)
        seen: dict[Feed, int] = {}
        try:
            while True:
                watched = {feed for feed, _ in self._waiters}
                try:
                    if watched or len(seen) < len(FEEDS):
                        async with engine.connect() as conn:
                            await self._poll_once(conn, seen, watched)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("stream poll failed (%s); retrying", exc)
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await engine.dispose()

    async def _poll_once(self, conn, seen: dict[Feed, int], watched: set[Feed]) -> None:
        for feed in FEEDS:
            if feed not in seen:
                newest = select(func.max(feed.column))
                seen[feed] = (await conn.execute(newest)).scalar() or 0
                continue
            if feed not in watched:
                continue  # no stream: rows since are found when one opens
            query = (
                select(feed.model.campaign_id, func.max(feed.column))
                .where(feed.column > seen[feed])
                .group_by(feed.model.campaign_id)
            )
            for campaign_id, newest in (await conn.execute(query)).all():
                seen[feed] = max(seen[feed], newest)
                self._wake(feed, campaign_id)


def resume_point(request: Request, after: int | None) -> int | None:
    """`?after=`, else the `Last-Event-ID` an EventSource sends when it reconnects."""
    resume = request.headers.get("last-event-id", "").strip()
    if after is None and resume.isdigit():
        return int(resume)
    return after


async def event_stream(
    request: Request,
    session: AsyncSession,
    feed: Feed,
    campaign_id: str,
    after: int | None,
    render: Callable[[Any], tuple[str, dict[str, Any]]],
) -> StreamingResponse:
    """`text/event-stream` of the campaign's rows of `feed` after `after` (None: from now),
    each `id: <key>`, `event:` and `data:` from `render(row)`; a comment line every
    KEEP_ALIVE_SECONDS keeps proxies from closing it.

    `session` is the request's (the one its access check used): it is closed here, so an open
    stream holds no pooled connection between its reads."""
    sessionmaker = request.app.state.sessionmaker
    bus: MessageBus = request.app.state.message_bus
    campaign = feed.model.campaign_id == campaign_id
    if after is None:  # from now on
        latest = select(func.max(feed.column)).where(campaign)
        after = (await session.exec(latest)).one() or 0
    await session.close()

    async def events():
        last = after
        with bus.subscription(campaign_id, feed) as wake:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                wake.clear()
                async with sessionmaker() as reader:
                    query = (
                        select(feed.model)
                        .where(campaign, feed.column > last)
                        .order_by(feed.column)
                        .limit(BATCH)
                    )
                    rows = (await reader.exec(query)).all()
                for row in rows:
                    last = getattr(row, feed.key)
                    event, data = render(row)
                    yield f"id: {last}\nevent: {event}\ndata: {json.dumps(data)}\n\n"
                if rows:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
