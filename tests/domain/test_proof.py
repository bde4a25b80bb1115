"""Contracted proof (issue #15): every outcome splits a deliverable's amount exactly, and the
rules pay what the contract says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.money import split_release
from domain.proof import (
    MAX_TARGET,
    Metric,
    Objective,
    PayoutRule,
    ProofTerms,
    attainment,
    earned,
)

DAY = timedelta(days=1)


def views(target: int) -> Objective:
    return Objective(metric=Metric.VIEWS, target=target, within=14 * DAY)


def test_the_issue_example_pays_thirty_percent_plus_seventy_times_a_half():
    proof = ProofTerms(
        live_for=30 * DAY,
        objectives=[views(10_000)],
        payout_rule=PayoutRule(kind="pro_rata", floor_bps=3_000),
    )
    assert earned(10_000, proof, {Metric.VIEWS: 5_000}) == (3_000 + 3_500, 3_500)


def test_all_or_nothing_pays_only_when_every_target_is_met():
    proof = ProofTerms(
        objectives=[views(1_000), Objective(metric=Metric.LIKES, target=50, within=DAY)]
    )
    assert earned(9_999, proof, {Metric.VIEWS: 1_000, Metric.LIKES: 50}) == (9_999, 0)
    assert earned(9_999, proof, {Metric.VIEWS: 10**6, Metric.LIKES: 49}) == (0, 9_999)


def test_no_objectives_is_approval_alone_weak_reach_is_no_failure():
    assert earned(5_000, ProofTerms(live_for=DAY), {}) == (5_000, 0)


def test_rounding_goes_to_the_brand():
    proof = ProofTerms(objectives=[views(3)], payout_rule=PayoutRule(kind="pro_rata"))
    assert earned(100, proof, {Metric.VIEWS: 1}) == (33, 67)


@pytest.mark.parametrize(
    "terms",
    [
        {"objectives": [{"metric": "views", "target": 0, "within": "P1D"}]},
        {"objectives": [{"metric": "views", "target": "10", "within": "P1D"}]},
        {"objectives": [{"metric": "views", "target": 1.5, "within": "P1D"}]},
        {"objectives": [{"metric": "reach", "target": 1, "within": "P1D"}]},
        {"objectives": [{"metric": "views", "target": 1, "within": "P400D"}]},
        {"objectives": [{"metric": "views", "target": MAX_TARGET + 1, "within": "P1D"}]},
        {"objectives": [{"metric": "views", "target": 1, "within": "P1D"}] * 2},
        {"payout_rule": {"kind": "all_or_nothing", "floor_bps": 100}},
        {"payout_rule": {"kind": "pro_rata", "floor_bps": 10_001}},
        {"live_for": "PT0S"},
        {"extra": 1},
    ],
)
def test_bad_proof_terms_are_refused(terms):
    with pytest.raises(ValidationError):
        ProofTerms.model_validate(terms)


def test_the_contract_view_is_canonical():
    a = ProofTerms.model_validate(
        {
            "objectives": [
                {"metric": "likes", "target": 5, "within": "P1D"},
                {"metric": "views", "target": 9, "within": "PT3600S"},
            ]
        }
    )
    b = ProofTerms.model_validate(
        {
            "objectives": [
                {"metric": "views", "target": 9, "within": "PT1H"},
                {"metric": "likes", "target": 5, "within": "PT24H"},
            ]
        }
    )
    assert a.contract_view() == b.contract_view()


objective = st.builds(
    Objective,
    metric=st.sampled_from(list(Metric)),
    target=st.integers(1, MAX_TARGET),
    within=st.just(DAY),
)
proofs = st.builds(
    ProofTerms,
    objectives=st.lists(objective, max_size=6, unique_by=lambda o: o.metric),
    payout_rule=st.one_of(
        st.just(PayoutRule()),
        st.builds(PayoutRule, kind=st.just("pro_rata"), floor_bps=st.integers(0, 10_000)),
    ),
)
figures = st.dictionaries(st.sampled_from(list(Metric)), st.integers(0, 2 * MAX_TARGET))


@given(
    amount=st.integers(0, 10**12),
    proof=proofs,
    achieved=figures,
    fee=st.integers(0, 5_000),
    commission=st.integers(0, 5_000),
)
def test_every_outcome_splits_the_amount_exactly(amount, proof, achieved, fee, commission):
    release, refund = earned(amount, proof, achieved)
    assert release >= 0 and refund >= 0 and release + refund == amount
    if proof.payout_rule.kind == "pro_rata" and proof.objectives:
        assert release >= amount * proof.payout_rule.floor_bps // 10_000
    split = split_release(release, fee, commission)
    assert split.creator_net + split.platform_fee + split.agency_commission == release
    assert min(split.creator_net, split.platform_fee, split.agency_commission) >= 0


@given(
    amount=st.integers(1, 10**9),
    proof=proofs,
    achieved=figures,
    metric=st.sampled_from(list(Metric)),
)
def test_more_reach_never_earns_less(amount, proof, achieved, metric):
    more = {**achieved, metric: achieved.get(metric, 0) + 1_000}
    assert earned(amount, proof, more)[0] >= earned(amount, proof, achieved)[0]
    assert 0 <= attainment(proof.objectives, achieved) <= 1
