"""Proof of performance at real lengths (issue #15), on the time-skipping server: hourly polls
of a real metrics service over HTTP for a month, the release at the moment the proof is
complete with the exact pro-rata amount, and every run's history within the budget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from domain.campaign import HISTORY_LIMIT, DeliverableAction, SubmitDeliverable
from domain.proof import Metric, Objective, PayoutRule
from tests.metrics_service import reading_from
from tests.workflows.test_campaign import (
    BRAND,
    CREATOR,
    accept_and_fund,
    new_campaign,
    start,
    state,
)
from workflows.campaign import CampaignWorkflow

DAY = timedelta(days=1)
# The history budget of a run (README, "Long-lived workflows"): events and bytes.
MAX_EVENTS, MAX_BYTES = 10_000, 10 * 1024 * 1024


@pytest.fixture
def settings(settings, metrics_service):
    """The worker reads counts from the test's metrics service (loopback, plain http)."""
    return reading_from(settings, metrics_service)


def proof_campaign(amount: int = 10_000, **proof):
    new = new_campaign(amounts=(amount,))
    spec = new.deliverables[0].model_copy(update=proof)
    return new.model_copy(update={"deliverables": [spec], "proof_poll_every": timedelta(hours=1)})


async def approved(env, task_queue, new, url: str):
    """The campaign started, accepted, funded, its one deliverable (`url`) submitted and
    approved: tracking has begun."""
    campaign = await start(env, task_queue, new)
    await accept_and_fund(campaign)
    await campaign.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url=url)
    )
    await campaign.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    return campaign


async def runs_of(env, handle) -> list[tuple[int, int]]:
    """(events, bytes) of every run of the workflow, first to current."""
    sizes, run_id = [], handle.first_execution_run_id or handle.run_id
    while run_id:
        history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        events = history.events
        sizes.append((len(events), sum(e.ByteSize() for e in events)))
        last = events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return sizes


async def test_a_month_of_hourly_polls_releases_the_exact_pro_rata_amount(
    env, task_queue, metrics_service
):
    url = metrics_service.publish("reel", views=5_000, likes=40)
    new = proof_campaign(
        live_for=30 * DAY,
        objectives=[Objective(metric=Metric.VIEWS, target=10_000, within=14 * DAY)],
        payout_rule=PayoutRule(kind="pro_rata", floor_bps=3_000),
    )
    campaign = await approved(env, task_queue, new, url)
    approved_at = (await state(campaign))["deliverables"][0]["approved_at"]

    # A day at a time: one sleep call per day of polls, each well inside its RPC's timeout.
    for _ in range(29):
        await env.sleep(DAY)
    await env.sleep(DAY - timedelta(hours=1))
    current = await state(campaign)
    item = current["deliverables"][0]
    # A month of looks and still held: the proof is not complete before live_for has passed.
    assert item["status"] == "approved"
    assert item["tracking"]["polls"] >= 29 * 24
    progress = item["objectives"][0]["progress"]
    assert progress == {
        "achieved": 5_000,
        "met": False,
        "evaluated": True,  # its P14D window closed: this figure counts
        "due_at": progress["due_at"],
    }
    assert current["escrow"]["held"] == 10_000
    # Weeks of growth after the window do not count.
    metrics_service.publish("reel", views=50_000, likes=40)

    await env.sleep(timedelta(hours=2))
    current = await state(campaign)
    item = current["deliverables"][0]
    assert item["status"] == "released"
    assert item["tracking"]["release"] == 3_000 + 3_500  # 30 % + 70 % × ½
    assert current["escrow"] == {
        "funded": 10_000,
        "held": 0,
        "released_to_creator": 5_850,  # 6,500 less the 10 % fee
        "agency_commission": 0,
        "platform_fee": 650,
        "refunded_to_brand": 3_500,
        "charged_back": 0,
    }
    assert current["status"] == "completed"
    assert item["approved_at"] == approved_at

    runs = await runs_of(env, campaign)
    assert len(runs) >= 2, runs  # it continued as new on the way
    for events, size in runs:
        assert events <= HISTORY_LIMIT + 100 and events < MAX_EVENTS, runs
        assert size < MAX_BYTES, runs


async def test_a_takedown_pauses_the_release_and_a_restore_within_the_cure_window_resumes_it(
    env, task_queue, metrics_service
):
    url = metrics_service.publish("story", views=100)
    new = proof_campaign(live_for=10 * DAY, cure_window=3 * DAY)
    campaign = await approved(env, task_queue, new, url)
    await env.sleep(2 * DAY)
    metrics_service.take_down("story")
    await env.sleep(DAY)
    tracking = (await state(campaign))["deliverables"][0]["tracking"]
    assert tracking["down_since"] and tracking["cure_by"] and not tracking["reachable"]
    metrics_service.restore("story")
    await env.sleep(DAY)
    item = (await state(campaign))["deliverables"][0]
    assert item["tracking"]["cure_by"] is None and item["tracking"]["reachable"]
    # The day it was down does not count towards live_for: 10 days live means day 11+.
    await env.sleep(6 * DAY)
    assert (await state(campaign))["deliverables"][0]["status"] == "approved"
    await env.sleep(2 * DAY)
    current = await state(campaign)
    assert current["deliverables"][0]["status"] == "released"
    assert current["escrow"]["released_to_creator"] == 9_000
