"""Escrow arithmetic: the fee rule and the exact ledger (SPEC §2)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import Escrow, MoneyError, ReleaseSplit, check_split, split_release

GROSS = st.integers(min_value=0, max_value=10**12)


@st.composite
def rates(draw: st.DrawFn) -> tuple[int, int]:
    fee = draw(st.integers(min_value=0, max_value=10_000))
    commission = draw(st.integers(min_value=0, max_value=10_000 - fee))
    return fee, commission


@given(gross=GROSS, bps=rates())
def test_split_parts_are_floored_and_sum_to_gross(gross: int, bps: tuple[int, int]) -> None:
    fee_bps, commission_bps = bps
    split = split_release(gross, fee_bps, commission_bps)
    assert split.gross == gross
    assert min(split.platform_fee, split.agency_commission, split.creator_net) >= 0
    assert split.platform_fee + split.agency_commission + split.creator_net == gross
    # floor(x) is the unique integer f with f <= x < f + 1, checked without division.
    assert split.platform_fee * 10_000 <= gross * fee_bps < (split.platform_fee + 1) * 10_000
    assert (
        split.agency_commission * 10_000
        <= gross * commission_bps
        < (split.agency_commission + 1) * 10_000
    )


def test_split_concrete_numbers() -> None:
    assert split_release(12345, 1000, 1500) == ReleaseSplit(
        gross=12345, platform_fee=1234, agency_commission=1851, creator_net=9260
    )
    assert split_release(99, 1000, 0) == ReleaseSplit(99, 9, 0, 90)
    assert split_release(0, 1000, 1500) == ReleaseSplit(0, 0, 0, 0)
    assert split_release(10**12, 10_000, 0) == ReleaseSplit(10**12, 10**12, 0, 0)


@pytest.mark.parametrize(
    ("gross", "fee_bps", "commission_bps"),
    [(-1, 1000, 0), (100, -1, 0), (100, 0, -1), (100, 10_001, 0), (100, 6000, 4001)],
)
def test_split_rejects_impossible_inputs(gross: int, fee_bps: int, commission_bps: int) -> None:
    with pytest.raises(MoneyError):
        split_release(gross, fee_bps, commission_bps)


def test_escrow_concrete_flow() -> None:
    e = Escrow().fund(30_000)
    assert (e.funded, e.held) == (30_000, 30_000)
    e = e.release(12345, 1000, 1500)
    assert e == Escrow(
        funded=30_000,
        held=17_655,
        released_to_creator=9260,
        agency_commission=1851,
        platform_fee=1234,
    )
    e = e.refund(655)
    assert (e.held, e.refunded_to_brand) == (17_000, 655)
    e = e.settle(7_000, 10_000, 1000, 0)
    assert e == Escrow(
        funded=30_000,
        held=0,
        released_to_creator=9260 + 6300,
        agency_commission=1851,
        platform_fee=1234 + 700,
        refunded_to_brand=10_655,
    )
    assert e.is_exact


def test_fund_only_once_and_positive() -> None:
    with pytest.raises(MoneyError):
        Escrow().fund(0)
    with pytest.raises(MoneyError):
        Escrow().fund(-5)
    with pytest.raises(MoneyError, match="already funded"):
        Escrow().fund(100).fund(100)


def test_movements_reject_negative_and_over_held() -> None:
    e = Escrow().fund(100)
    for bad in (
        lambda: e.release(101, 1000, 0),
        lambda: e.release(-1, 1000, 0),
        lambda: e.refund(101),
        lambda: e.refund(-1),
        lambda: e.settle(60, 41, 1000, 0),
        lambda: e.settle(-1, 101, 1000, 0),
        lambda: e.release(50, 9000, 1001),
    ):
        with pytest.raises(MoneyError):
            bad()
    assert e == Escrow(funded=100, held=100)


def test_escrow_is_frozen_and_is_exact_detects_drift() -> None:
    e = Escrow().fund(100)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen
        e.held = 0  # type: ignore[misc]
    assert not Escrow(funded=100, held=99).is_exact
    assert not Escrow(held=1).is_exact
    assert Escrow().is_exact


@given(data=st.data(), funded=st.integers(min_value=1, max_value=10**12), bps=rates())
def test_any_sequence_of_movements_keeps_ledger_exact(
    data: st.DataObject, funded: int, bps: tuple[int, int]
) -> None:
    fee_bps, commission_bps = bps
    escrow = Escrow().fund(funded)
    moved = 0  # our own tally of gross amounts that left `held`
    for _ in range(data.draw(st.integers(min_value=0, max_value=12), label="steps")):
        held = escrow.held
        kind = data.draw(st.sampled_from(["release", "refund", "settle"]), label="kind")
        overdraw = data.draw(st.booleans(), label="overdraw")
        if kind == "settle":
            if overdraw:  # the two halves together exceed what is held
                a = data.draw(st.integers(min_value=0, max_value=held + 1), label="a")
                b = data.draw(st.integers(min_value=held + 1 - a, max_value=held + 10**6))
            else:
                a = data.draw(st.integers(min_value=0, max_value=held), label="a")
                b = data.draw(st.integers(min_value=0, max_value=held - a), label="b")
            op, amount = (lambda e, a=a, b=b: e.settle(a, b, fee_bps, commission_bps)), a + b
        else:
            if overdraw:
                amount = data.draw(
                    st.one_of(
                        st.integers(min_value=held + 1, max_value=held + 10**6),
                        st.integers(min_value=-(10**6), max_value=-1),
                    ),
                    label="amount",
                )
            else:
                amount = data.draw(st.integers(min_value=0, max_value=held), label="amount")
            if kind == "release":
                op = lambda e, x=amount: e.release(x, fee_bps, commission_bps)  # noqa: E731
            else:
                op = lambda e, x=amount: e.refund(x)  # noqa: E731

        before = escrow
        if overdraw:
            with pytest.raises(MoneyError):
                op(escrow)
            assert escrow == before  # a refused movement changes nothing
        else:
            escrow = op(escrow)
            moved += amount
            assert escrow.held == held - amount

        assert escrow.is_exact
        assert escrow.funded == funded
        assert min(escrow.model_dump().values()) >= 0
        out = (
            escrow.released_to_creator
            + escrow.agency_commission
            + escrow.platform_fee
            + escrow.refunded_to_brand
        )
        assert out == moved == funded - escrow.held


@pytest.mark.parametrize(
    ("release", "refund", "disputed"),
    [(60, 40, 100), (0, 100, 100), (100, 0, 100), (0, 0, 0)],
)
def test_check_split_accepts_exact_splits(release: int, refund: int, disputed: int) -> None:
    assert check_split(release, refund, disputed) is None


@pytest.mark.parametrize(
    ("release", "refund", "disputed", "message"),
    [
        (60, 39, 100, "must equal the disputed amount 100"),
        (60, 41, 100, "must equal the disputed amount 100"),
        (-1, 101, 100, ">= 0"),
        (101, -1, 100, ">= 0"),
    ],
)
def test_check_split_rejects(release: int, refund: int, disputed: int, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        check_split(release, refund, disputed)
    assert issubclass(MoneyError, ValueError)
