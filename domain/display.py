"""How the Temporal UI's current details show money, deadlines and free text (SPEC §5).

Pure and deterministic: the workflows call these while rendering their details, with
`workflow.now()` as the reference time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

# Currencies whose minor unit is the unit itself (Stripe's "zero-decimal currencies").
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
# Three-decimal currencies (Stripe counts them in thousandths).
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def decimals(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """Minor units as a person reads them: 15000 eur → "€150.00", 15000 jpy → "¥15,000",
    15000 chf → "150.00 CHF"."""
    places = decimals(currency)
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    units, minor = divmod(amount, 10**places)
    number = f"{units:,}" + (f".{minor:0{places}d}" if places else "")
    symbol = SYMBOLS.get(currency.lower())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def format_duration(delta: timedelta) -> str:
    """A coarse, always-positive length: "45 s", "12 min", "5 h", "3 d 4 h"."""
    seconds = abs(int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(deadline: datetime, now: datetime) -> str:
    """ "in 2 h" before the deadline, "overdue by 3 h" after it."""
    if deadline > now:
        return f"in {format_duration(deadline - now)}"
    return f"overdue by {format_duration(now - deadline)}"


def one_line(text: str | None, limit: int) -> str:
    """Free text for one markdown line or table cell: newlines folded, pipes and backticks
    neutralised, cut to `limit` characters with an ellipsis."""
    if not text:
        return ""
    flat = " ".join(text.split()).replace("|", "¦").replace("`", "'")
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def party(party_id: str | None, names: Mapping[str, str]) -> str:
    """A party by name where the API told the workflow its name, always with its id (what
    Updates and the API take): "Acme (`pty_1`)", else "`pty_1`"."""
    name = names.get(party_id or "")
    return f"{one_line(name, 80)} (`{party_id}`)" if name else f"`{party_id}`"
