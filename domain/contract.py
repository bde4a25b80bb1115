"""Contract hash (SPEC §3.1): sha256 of the canonical JSON of terms + deliverables."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from domain.terms import Terms


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rfc3339(dt: datetime) -> str:
    """UTC RFC 3339 with a "Z" suffix (microseconds only when nonzero).

    Naive datetimes are rejected: interpreting them would depend on the host's time
    zone, which breaks determinism inside workflows.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"rfc3339 needs a timezone-aware datetime, got naive {dt!r}")
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contract_hash(terms: Terms, deliverables: list[dict[str, Any]]) -> str:
    """Hash of what the creator accepts. `deliverables` are JSON-mode dicts
    `{title, description, amount, due_at}` with `due_at` from `rfc3339()` or None."""
    document = {"terms": terms.model_dump(mode="json"), "deliverables": deliverables}
    return sha256_hex(canonical_json(document))
