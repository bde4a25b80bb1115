"""Terms (SPEC §3), reminder timing and the contract hash."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from domain.contract import canonical_json, contract_hash, rfc3339, sha256_hex
from domain.terms import DURATION_FIELDS, Terms, reminder_offset

SPEC_DEFAULTS = {
    "acceptance_window": "P3D",
    "funding_window": "P3D",
    "review_window": "P5D",
    "clearing_period": "P2D",
    "cancellation_window": "P2D",
    "review_period": "P14D",
    "response_window": "P5D",
    "negotiation_window": "P7D",
    "mediation_window": "P2D",
    "proposal_window": "P2D",
    "arbitration_window": "P5D",
    "max_revisions": 2,
    "platform_fee_bps": 1000,
    "agency_commission_bps": 0,
}


def test_defaults_match_spec_table() -> None:
    t = Terms()
    assert t.review_period == timedelta(days=14)
    assert t.negotiation_window == timedelta(days=7)
    assert t.model_dump(mode="json") == SPEC_DEFAULTS
    assert set(DURATION_FIELDS) | {
        "max_revisions",
        "platform_fee_bps",
        "agency_commission_bps",
    } == (set(Terms.model_fields))


def test_iso_durations_parse() -> None:
    t = Terms.model_validate(
        {"review_window": "PT1S", "clearing_period": "PT1H30M", "review_period": "P365D"}
    )
    assert t.review_window == timedelta(seconds=1)
    assert t.clearing_period == timedelta(hours=1, minutes=30)
    assert t.review_period == timedelta(days=365)


@pytest.mark.parametrize("bad", ["PT0S", "-P1D", "P400D", "PT0.5S", "P365DT1S"])
@pytest.mark.parametrize("field", ["acceptance_window", "review_window", "arbitration_window"])
def test_out_of_range_durations_rejected_naming_field(field: str, bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Terms.model_validate({field: bad})
    (error,) = exc.value.errors()
    assert error["loc"] == (field,)
    assert field in error["msg"]


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Terms.model_validate({"review_windw": "P1D"})


@pytest.mark.parametrize(
    "override",
    [
        {"max_revisions": -1},
        {"max_revisions": 101},
        {"platform_fee_bps": 10_001},
        {"agency_commission_bps": -1},
        {"platform_fee_bps": 6000, "agency_commission_bps": 4001},
    ],
)
def test_bad_counts_and_rates_rejected(override: dict) -> None:
    with pytest.raises(ValidationError):
        Terms.model_validate(override)


def test_rates_may_sum_to_exactly_100_percent() -> None:
    assert Terms(platform_fee_bps=6000, agency_commission_bps=4000).agency_commission_bps == 4000


def test_json_round_trip_uses_iso_8601() -> None:
    t = Terms.model_validate({"review_window": "PT1S", "clearing_period": "PT1H30M"})
    raw = t.model_dump_json()
    data = json.loads(raw)
    assert data["acceptance_window"] == "P3D"
    assert data["review_window"] == "PT1S"
    assert data["clearing_period"] == "PT1H30M"
    assert Terms.model_validate_json(raw) == t


@pytest.mark.parametrize(
    ("window", "offset"),
    [
        (timedelta(days=5), timedelta(hours=24)),
        (timedelta(hours=48), timedelta(hours=24)),
        (timedelta(hours=47), timedelta(hours=23, minutes=30)),
        (timedelta(days=1), timedelta(hours=12)),
        (timedelta(seconds=2), timedelta(seconds=1)),
        (timedelta(seconds=1), timedelta(milliseconds=500)),
        (timedelta(0), timedelta(0)),
    ],
)
def test_reminder_offset(window: timedelta, offset: timedelta) -> None:
    assert reminder_offset(window) == offset


DELIVERABLES = [
    {
        "title": "Reel",
        "description": "30 s vertical video",
        "amount": 50_000,
        "due_at": "2030-01-15T12:00:00Z",
    },
    {"title": "Story", "description": "3 frames", "amount": 10_000, "due_at": None},
]


def test_canonical_json_and_sha256() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_contract_hash_ignores_key_order() -> None:
    reordered = [dict(reversed(list(d.items()))) for d in DELIVERABLES]
    h = contract_hash(Terms(), DELIVERABLES)
    assert len(h) == 64
    assert contract_hash(Terms(), reordered) == h
    # Terms given as ISO strings or timedeltas hash the same: the hash is over the JSON form.
    assert contract_hash(Terms.model_validate({"review_window": "P5D"}), DELIVERABLES) == h
    expected_doc = {"terms": SPEC_DEFAULTS, "deliverables": DELIVERABLES}
    assert h == sha256_hex(canonical_json(expected_doc))


@pytest.mark.parametrize("field", list(SPEC_DEFAULTS))
def test_contract_hash_changes_with_any_term(field: str) -> None:
    changed = {"max_revisions": 3, "platform_fee_bps": 999, "agency_commission_bps": 1}
    terms = Terms.model_validate({field: changed.get(field, "PT1S")})
    assert contract_hash(terms, DELIVERABLES) != contract_hash(Terms(), DELIVERABLES)


@pytest.mark.parametrize(
    ("index", "key", "value"),
    [
        (0, "title", "Reel!"),
        (0, "description", "31 s vertical video"),
        (0, "amount", 50_001),
        (0, "due_at", "2030-01-15T12:00:01Z"),
        (1, "due_at", "2030-01-15T12:00:00Z"),
    ],
)
def test_contract_hash_changes_with_any_deliverable_field(index: int, key: str, value) -> None:
    changed = [dict(d) for d in DELIVERABLES]
    changed[index][key] = value
    assert contract_hash(Terms(), changed) != contract_hash(Terms(), DELIVERABLES)


def test_contract_hash_depends_on_deliverable_order() -> None:
    swapped = list(reversed(DELIVERABLES))
    assert contract_hash(Terms(), swapped) != contract_hash(Terms(), DELIVERABLES)


def test_rfc3339() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2030, 1, 15, 14, 0, tzinfo=plus_two)) == "2030-01-15T12:00:00Z"
    assert rfc3339(datetime(2030, 1, 15, 12, 0, 0, 5, tzinfo=UTC)) == (
        "2030-01-15T12:00:00.000005Z"
    )
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2030, 1, 15, 12, 0))
