"""Opaque cursors for `{items, next_cursor}` lists."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import Query

from api.errors import ProblemError

Limit = Annotated[int, Query(ge=1, le=100)]


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        raise ProblemError(422, "validation_error", "cursor is not valid") from None
    if not isinstance(position, list):
        raise ProblemError(422, "validation_error", "cursor is not valid")
    return position


def page(rows: list[Any], limit: int, position_of, render) -> dict[str, Any]:
    """`rows` was fetched with limit + 1: the extra row only says whether there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [render(row) for row in rows],
        "next_cursor": encode_cursor(position_of(rows[-1])) if more and rows else None,
    }
