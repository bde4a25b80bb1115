"""Tracking a deliverable's proof (issue #15): what a snapshot changes, what it records, and
that contracts without proof terms hash exactly as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.campaign import DeliverableSpec
from domain.contract import canonical_json, contract_hash, rfc3339, sha256_hex
from domain.proof import (
    Metric,
    Objective,
    Observation,
    ProofTerms,
    figures_of,
    start_tracking,
)
from domain.terms import Terms

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def seen(n: int = 1, reachable: bool = True, **figures: int) -> Observation:
    return Observation(
        index=0,
        snapshot_id=n,
        source="http",
        taken_at=T0,
        reachable=reachable,
        figures={Metric(k): v for k, v in figures.items()},
        sha256="a" * 64,
    )


def tracking(**proof):
    terms = ProofTerms(
        live_for=10 * DAY,
        objectives=[Objective(metric=Metric.VIEWS, target=1_000, within=14 * DAY)],
        **proof,
    )
    return start_tracking(terms, submitted_at=T0, now=T0 + DAY, poll_every=timedelta(hours=1))


def test_a_contract_without_proof_terms_hashes_as_before():
    spec = DeliverableSpec(title="Post", description="A reel", amount=10_000)
    before = {"title": "Post", "description": "A reel", "amount": 10_000, "due_at": None}
    assert spec.contract_view() == before
    expected = sha256_hex(
        canonical_json({"terms": Terms().model_dump(mode="json"), "deliverables": [before]})
    )
    assert contract_hash(Terms(), [spec.contract_view()]) == expected
    proved = spec.model_copy(update={"live_for": DAY})
    assert contract_hash(Terms(), [proved.contract_view()]) != expected


@pytest.mark.parametrize(
    "fields",
    [
        {"payout_rule": {"kind": "pro_rata"}},  # nothing to prove
        {"cure_window": "P1D"},  # no post that must stay live
        {"live_for": "P1D", "cure_window": "PT0S"},
        {"objectives": []},
    ],
)
def test_incomplete_proof_terms_are_refused(fields):
    with pytest.raises(ValidationError):
        DeliverableSpec.model_validate({"title": "x", "amount": 1, **fields})


def test_only_contracted_metric_names_and_sane_counts_are_kept():
    raw = {"views": 5, "reach": 9, "likes": -1, "shares": "3", "clicks": True, "comments": 2}
    assert figures_of(raw) == {Metric.VIEWS: 5, Metric.COMMENTS: 2}


def test_figures_matter_only_at_targets_and_quarters():
    t = tracking()
    now = T0 + 2 * DAY
    assert t.observe(seen(views=100), now, DAY) == []  # under a quarter: state only
    assert t.figures == {Metric.VIEWS: 100} and t.snapshot_id == 1
    assert t.observe(seen(2, views=260), now, DAY) == ["progress:views"]
    assert t.observe(seen(3, views=300), now, DAY) == []
    assert t.observe(seen(4, views=1_000), now, DAY) == ["target_met:views"]
    assert t.observe(seen(5, views=5_000), now, DAY) == []


def test_a_takedown_during_live_for_opens_a_cure_window_and_a_restore_extends_live_for():
    t = tracking()
    live_until = t.live_until
    down_at = T0 + 3 * DAY
    assert t.observe(seen(reachable=False), down_at, 2 * DAY) == ["taken_down"]
    assert t.cure_by == down_at + 2 * DAY and not t.reachable
    assert t.deadline(None) == t.cure_by  # the campaign shows the cure window
    assert t.observe(seen(2, reachable=False), down_at + DAY, 2 * DAY) == []
    assert t.observe(seen(3, views=10), down_at + DAY, 2 * DAY) == ["restored"]
    assert t.live_until == live_until + DAY and t.cure_by is None


def test_a_post_gone_after_live_for_is_no_takedown():
    t = tracking()
    assert t.observe(seen(reachable=False), t.live_until, DAY) == []
    assert t.cure_by is None


def test_the_release_waits_for_every_window_and_figures_freeze_at_theirs():
    t = tracking()
    # live_for ends at T0+11d; the views window at T0+14d (from the submission).
    assert t.decide_at(clears_at=T0 + 3 * DAY) == T0 + 14 * DAY
    t.observe(seen(views=400), T0 + 13 * DAY, DAY)
    assert t.evaluate_due(T0 + 14 * DAY)[0].achieved == 400
    t.observe(seen(2, views=900), T0 + 15 * DAY, DAY)
    assert t.achieved() == {Metric.VIEWS: 400}  # later growth does not count
    assert rfc3339(t.next_poll_at)
