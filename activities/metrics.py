"""Metrics of tracked posts (issue #15): providers look at a post, snapshots go to the database.

A provider answers whether the post still answers and, when it can, its counts. Every look
(and every integration's report, api/routes/metrics.py) is stored as a `metric_snapshot` row
with the sha256 of its canonical payload; the workflow gets only the compact `Observation`
(figures of the contracted metrics, reachable, id and digest), never the payload.

- `link`: GET on the post URL itself, redirects not followed; any answer below 400 is live.
  The URL is the creator's, so it is checked as webhook URLs are (public addresses only,
  unless `webhook_allow_private`/`webhook_allow_http`, for development and tests).
- `http`: GET `{metrics_service_url}?post=<post URL>` → a JSON object of counts; 404 or 410
  means the post is gone. Other failures retry (the workflow skips a poll that never answers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notifications import resolve
from db.models import MetricSnapshot, as_utc, store_evidence_text
from domain.contract import canonical_json, rfc3339, sha256_hex
from domain.proof import (
    MAX_EVIDENCE_SNAPSHOTS,
    Metric,
    Observation,
    ObservePost,
    SnapshotRef,
    TakedownEvidence,
    figures_of,
)
from domain.webhook_targets import WebhookTargetRefused, check_addresses, check_url

POST_NOT_CHECKABLE = "post_not_checkable"  # a URL Parley may not call: no retry


@dataclass
class Look:
    reachable: bool
    counts: dict[str, Any] = field(default_factory=dict)


class MetricsProvider(Protocol):
    name: str

    async def look(self, url: str, metrics: list[Metric]) -> Look: ...


class LinkProvider:
    """Takedown detection: does the post URL still answer?"""

    name = "link"

    def __init__(self, settings, resolver=None) -> None:
        self.timeout = settings.metrics_timeout_seconds
        self.allow_http, self.allow_private = (
            settings.webhook_allow_http,
            settings.webhook_allow_private,
        )
        self.resolve = resolver or resolve

    async def look(self, url: str, metrics: list[Metric]) -> Look:
        try:
            target = check_url(url, allow_http=self.allow_http, allow_private=self.allow_private)
            if target.address is None:
                check_addresses(
                    await self.resolve(target.host, target.port), allow_private=self.allow_private
                )
        except (WebhookTargetRefused, OSError) as err:
            raise ApplicationError(str(err), type=POST_NOT_CHECKABLE, non_retryable=True) from None
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
                answer = await http.get(url)
        except httpx.HTTPError:
            return Look(reachable=False)  # not answering is what a takedown looks like
        return Look(reachable=answer.status_code < 400)


class HttpProvider:
    """Counts per post URL from a metrics service (Parley's own or an analytics vendor's)."""

    name = "http"

    def __init__(self, settings) -> None:
        if not settings.metrics_service_url:
            raise ValueError("the http metrics provider needs PARLEY_METRICS_SERVICE_URL")
        self.base = settings.metrics_service_url
        self.timeout = settings.metrics_timeout_seconds

    async def look(self, url: str, metrics: list[Metric]) -> Look:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            answer = await http.get(self.base, params={"post": url})
        if answer.status_code in (404, 410):
            return Look(reachable=False)
        answer.raise_for_status()  # anything else: the service's trouble, retried
        counts = answer.json()
        if not isinstance(counts, dict):
            raise ApplicationError("the metrics service did not answer an object")
        return Look(reachable=True, counts=counts)


def provider_for(settings) -> MetricsProvider:
    return HttpProvider(settings) if settings.metrics_provider == "http" else LinkProvider(settings)


async def store_snapshot(
    session,
    *,
    campaign_id: str,
    index: int,
    source: str,
    reachable: bool,
    counts: dict[str, Any],
    taken_at: datetime | None = None,
) -> Observation:
    """Stores one snapshot (figures bounded to the contracted metric names) and answers what
    the workflow is told of it. The caller commits."""
    figures = figures_of(counts) if reachable else {}
    taken_at = (taken_at or datetime.now(UTC)).astimezone(UTC)
    kind = "integration" if source.startswith("integration") else source
    payload = {
        "campaign_id": campaign_id,
        "deliverable": index,
        "source": source,
        "taken_at": rfc3339(taken_at),
        "figures": {m.value: v for m, v in figures.items()},
        "reachable": reachable,
    }
    row = MetricSnapshot(
        campaign_id=campaign_id,
        deliverable=index,
        source=source,
        taken_at=taken_at,
        figures=payload["figures"],
        reachable=reachable,
        sha256=sha256_hex(canonical_json(payload)),
    )
    session.add(row)
    await session.flush()
    return Observation(
        index=index,
        snapshot_id=row.id,
        source=kind,
        taken_at=taken_at,
        reachable=reachable,
        figures=figures,
        sha256=row.sha256,
    )


class MetricsActivities:
    def __init__(self, settings, sessionmaker, provider: MetricsProvider | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self._provider = provider

    @property
    def provider(self) -> MetricsProvider:
        # Built on first use: a worker without a metrics service configured still starts.
        if self._provider is None:
            self._provider = provider_for(self.settings)
        return self._provider

    @activity.defn(name="observe_post")
    async def observe_post(self, req: ObservePost) -> Observation:
        """One look at the post, stored; the workflow gets the compact observation."""
        look = await self.provider.look(req.url, req.metrics)
        async with self.sessionmaker() as session:
            seen = await store_snapshot(
                session,
                campaign_id=req.campaign_id,
                index=req.index,
                source=self.provider.name,
                reachable=look.reachable,
                counts=look.counts,
            )
            await session.commit()
        return seen

    @activity.defn(name="takedown_evidence")
    async def takedown_evidence(self, req: ObservePost) -> TakedownEvidence:
        """The deliverable's latest snapshots as one evidence text (content-addressed, as the
        API stores evidence text), for the dispute the platform files after a takedown."""
        async with self.sessionmaker() as session:
            query = (
                select(MetricSnapshot)
                .where(
                    MetricSnapshot.campaign_id == req.campaign_id,
                    MetricSnapshot.deliverable == req.index,
                )
                .order_by(MetricSnapshot.id.desc())
                .limit(MAX_EVIDENCE_SNAPSHOTS)
            )
            rows = list(reversed((await session.exec(query)).all()))
            lines = [
                json.dumps(
                    {
                        "id": r.id,
                        "taken_at": rfc3339(as_utc(r.taken_at)),
                        "source": r.source,
                        "reachable": r.reachable,
                        "figures": r.figures,
                        "sha256": r.sha256,
                    },
                    sort_keys=True,
                )
                for r in rows
            ]
            text = f"Snapshots of {req.url} (latest {len(rows)}, oldest first):\n" + "\n".join(
                lines
            )
            digest = await store_evidence_text(session, text)
            await session.commit()
        return TakedownEvidence(
            sha256=digest,
            description=f"Metric snapshots of deliverable {req.index} ({len(rows)}), filed by "
            "Parley after the post stayed down past its cure window",
            snapshots=[SnapshotRef(id=r.id, sha256=r.sha256) for r in rows],
        )
