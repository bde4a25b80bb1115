"""Metrics providers (issue #15) against a real metrics service over HTTP, and the snapshot
they store in the real database."""

from __future__ import annotations

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.metrics import POST_NOT_CHECKABLE, HttpProvider, LinkProvider, MetricsActivities
from db.models import MetricSnapshot
from domain.contract import canonical_json, rfc3339, sha256_hex
from domain.proof import Metric, ObservePost
from tests.metrics_service import reading_from


@pytest.fixture
def local(settings, metrics_service):
    return reading_from(settings, metrics_service)


async def test_the_link_provider_sees_a_takedown_and_a_restore(local, metrics_service):
    url = metrics_service.publish("p", views=3)
    link = LinkProvider(local)
    assert (await link.look(url, [])).reachable
    metrics_service.take_down("p")
    assert not (await link.look(url, [])).reachable
    metrics_service.restore("p")
    assert (await link.look(url, [])).reachable


async def test_the_link_provider_never_calls_a_private_address_in_production(
    settings, metrics_service
):
    url = metrics_service.publish("p")
    with pytest.raises(ApplicationError) as refused:
        await LinkProvider(settings).look(url, [])  # http on loopback: refused
    assert refused.value.type == POST_NOT_CHECKABLE and refused.value.non_retryable


async def test_the_http_provider_reads_counts_and_sees_a_takedown(local, metrics_service):
    url = metrics_service.publish("p", views=1_200, likes=7)
    http = HttpProvider(local)
    look = await http.look(url, [Metric.VIEWS])
    assert look.reachable and look.counts == {"views": 1_200, "likes": 7}
    metrics_service.take_down("p")
    assert not (await http.look(url, [])).reachable
    metrics_service.fail("p")  # the service's own outage is no takedown: it raises, and is retried
    with pytest.raises(httpx.HTTPStatusError):
        await http.look(url, [])


async def test_a_look_is_stored_with_the_sha256_of_its_canonical_payload(
    local, metrics_service, sessionmaker
):
    url = metrics_service.publish("p", views=5, reach=10**9)
    seen = await MetricsActivities(local, sessionmaker).observe_post(
        ObservePost(campaign_id="cmp_x", index=2, url=url, metrics=[Metric.VIEWS])
    )
    assert seen.figures == {Metric.VIEWS: 5} and seen.source == "http"  # `reach` dropped
    async with sessionmaker() as session:
        row = await session.get(MetricSnapshot, seen.snapshot_id)
    payload = {
        "campaign_id": "cmp_x",
        "deliverable": 2,
        "source": "http",
        "taken_at": rfc3339(seen.taken_at),
        "figures": {"views": 5},
        "reachable": True,
    }
    assert row.sha256 == seen.sha256 == sha256_hex(canonical_json(payload))
    assert row.figures == {"views": 5} and row.reachable
