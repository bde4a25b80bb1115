"""Opaque cursors for `{items, next_cursor}` lists."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import tuple_

from api.errors import ProblemError

# One rule for every list (issue #14): 50 items unless `limit` says otherwise, at most 100.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page (default 50)")]


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *shape: type) -> list[Any] | None:
    """The position a cursor names, checked against the list's `shape` (e.g. `int`, or
    `datetime, str`): a cursor that was not ours is a 422, never a query on bad values."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(position, list) or len(position) != len(shape):
            raise ValueError
        return [_typed(value, kind) for value, kind in zip(position, shape, strict=True)]
    except (ValueError, TypeError, RecursionError):
        raise ProblemError(422, "validation_error", "cursor is not valid") from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is int and type(value) is int and 0 <= value < 2**63:  # a BIGINT, no bools
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a {kind.__name__}")


def page(rows: list[Any], limit: int, position_of, render) -> dict[str, Any]:
    """`rows` was fetched with limit + 1: the extra row only says whether there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [render(row) for row in rows],
        "next_cursor": encode_cursor(position_of(rows[-1])) if more and rows else None,
    }


async def newest_snapshots(session, query, model, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of read-model snapshots, newest first, keyed by (created_at, id)."""
    if (position := decode_cursor(cursor, datetime, str)) is not None:
        query = query.where(tuple_(model.created_at, model.id) < tuple(position))
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = (await session.exec(query)).all()
    return page(rows, limit, lambda r: [r.created_at.isoformat(), r.id], lambda r: r.snapshot)
