"""Money and deadlines as the Temporal UI's current details show them."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.currencies import CURRENCIES
from domain.display import decimals, format_money, one_line, party, relative


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (15000, "eur", "€150.00"),
        (5, "eur", "€0.05"),
        (0, "usd", "$0.00"),
        (123456789, "usd", "$1,234,567.89"),
        (15000, "jpy", "¥15,000"),
        (15000, "krw", "₩15,000"),
        (1500, "clp", "1,500 CLP"),
        (15000, "chf", "150.00 CHF"),
        (15000, "kwd", "15.000 KWD"),
        (-250, "gbp", "-£2.50"),
    ],
)
def test_minor_units_formatted_per_currency(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


def test_every_supported_currency_formats_and_keeps_its_digits() -> None:
    for currency in CURRENCIES:
        shown = format_money(10**6 + 7, currency)
        assert shown.replace(",", "").replace(".", "").strip("€$£¥₹₩ " + currency.upper()) == (
            "1000007"
        ), (currency, shown)
        assert decimals(currency) in (0, 2, 3)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "shown"),
    [
        (timedelta(hours=2), "in 2 h"),
        (timedelta(hours=-3), "overdue by 3 h"),
        (timedelta(minutes=30), "in 30 min"),
        (timedelta(seconds=20), "in 20 s"),
        (timedelta(days=5), "in 5 d"),
        (timedelta(days=-2, hours=-6), "overdue by 2 d 6 h"),
        (timedelta(0), "overdue by 0 s"),  # due now: the awaited action is late
    ],
)
def test_deadline_relative_to_now(offset: timedelta, shown: str) -> None:
    assert relative(NOW + offset, NOW) == shown


def test_free_text_is_one_bounded_line() -> None:
    assert one_line("a\n\nb | `c`", 50) == "a b ¦ 'c'"
    cut = one_line("x" * 1000, 100)
    assert len(cut) == 100 and cut.endswith("…")
    assert one_line(None, 10) == ""


def test_a_party_by_name_with_its_id_or_by_id_alone() -> None:
    names = {"pty_1": "Acme | Shoes\nLtd", "pty_2": ""}
    assert party("pty_1", names) == "Acme ¦ Shoes Ltd (`pty_1`)"
    assert party("pty_2", names) == "`pty_2`"  # no name known: the id
    assert party("pty_3", {}) == "`pty_3`"
    assert party("pty_1", {"pty_1": "x" * 500}).startswith("x" * 79 + "…")
