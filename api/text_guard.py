"""NUL characters refused at the door (found by schemathesis on PostgreSQL): PostgreSQL text
cannot hold U+0000, so a name or a note carrying one would fail its insert — after a
workflow had already started with it, whose read model then could never be written."""

from __future__ import annotations

import re

from fastapi import Request

from api.errors import ProblemError

# `\u0000` in JSON text, unless its backslash is itself escaped (`\\u0000` is literal text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


async def refuse_nul(request: Request) -> None:
    """A dependency of every route: query, path and JSON body without U+0000."""
    query = request.query_params.multi_items()
    if "\x00" in request.url.path or any("\x00" in k + v for k, v in query):
        raise ProblemError(422, "validation_error", "text may not contain NUL (U+0000)")
    if request.headers.get("content-type", "").startswith("application/json"):
        if _JSON_NUL.search(await request.body()):
            raise ProblemError(422, "validation_error", "text may not contain NUL (U+0000)")
