"""What the Temporal UI's evidence links open (issue #12): browser pages, no bearer header.

A dispute's current details give every evidence item a link here, signed by the worker when
the UI reads the details (workflows/console.py): HMAC over (dispute, item, expiry) under the
key the API and the workers share, valid 15 minutes. The link alone is not enough: the
Temporal UI shows every dispute to everyone signed in to it, so a link seen on screen must not
open evidence for a mediator the case is not assigned to (SPEC §1). The browser also carries
the mediator's console token — pasted once per working session into the form this route shows,
kept in an HttpOnly cookie scoped to /v1/console — and the item opens only for the dispute's
assigned mediator. Parties read their evidence through the API with their key.

Files download with the evidence route's headers (attachment, nosniff); links show their URL
on a page of ours (no redirect: a signed link must not become an open redirect, and the
target never learns the signed URL); texts and quoted messages show as plain text.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.routes.disputes import evidence_file_response
from api.views import dispute_view
from db.models import DisputeRecord, Party
from domain.authority import verify_console_token, verify_evidence_link

# Browser pages, not API operations: left out of the OpenAPI document.
router = APIRouter(prefix="/v1/console", tags=["console"], include_in_schema=False)

COOKIE = "parley_console"
COOKIE_PATH = "/v1/console"
# Every page: never cached, never framed, no scripts, and the signed URL never sent onward.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
EXPIRED = (
    "This evidence link is invalid or has expired: reload the dispute's page in the Temporal "
    "UI, whose details sign fresh links."
)


def _mediator(key: bytes, cookie: str | None, now: datetime) -> str | None:
    """The mediator whose console token the browser carries, if it is still valid."""
    mediator_id, _, token = (cookie or "").partition(":")
    if mediator_id and token and verify_console_token(key, token, mediator_id, now):
        return mediator_id
    return None


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · Parley</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;"
        "padding:0 1rem}input{width:100%;font:inherit;padding:.3rem}label{display:block;"
        "margin:.8rem 0}code{word-break:break-all}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def _sign_in(next_url: str) -> HTMLResponse:
    """The form that puts a mediator's console token in this browser for the session."""
    return _page(
        "Console sign-in",
        "<p>Evidence opens for the dispute's assigned mediator. Paste your mediator id and "
        "console token (<code>POST /v1/mediators/me/console-token</code>, valid 8 hours); "
        "this browser keeps them until the token expires.</p>"
        '<form method="post" action="/v1/console/session">'
        '<label>Mediator id <input name="mediator_id" autocomplete="username" required></label>'
        '<label>Console token <input name="console_token" type="password" '
        'autocomplete="current-password" required></label>'
        f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
        "<button>Open the evidence</button></form>",
        status=401,
    )


@router.post("/session")
async def start_session(
    settings: SettingsDep,
    request: Request,
    mediator_id: Annotated[str, Form(max_length=255)],
    console_token: Annotated[str, Form(max_length=255)],
    next_url: Annotated[str, Form(alias="next", max_length=4096)] = COOKIE_PATH,
) -> Response:
    """Checks the console token, keeps it in an HttpOnly cookie for /v1/console only, and
    goes back to the evidence link the form was shown for."""
    key = settings.authority_key
    now = datetime.now(UTC)
    if key is None or _mediator(key, f"{mediator_id}:{console_token}", now) is None:
        raise ProblemError(
            403,
            "forbidden",
            f"console_token is not valid for {mediator_id} (or has expired): "
            "get one from POST /v1/mediators/me/console-token",
        )
    # Only back into the console: the form's `next` must not send the browser elsewhere.
    inside = next_url.startswith(COOKIE_PATH + "/") and "//" not in next_url
    target = next_url if inside else COOKIE_PATH
    response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
    expires = int(console_token.partition(".")[0])
    response.set_cookie(
        COOKIE,
        f"{mediator_id}:{console_token}",
        max_age=max(expires - int(now.timestamp()), 0),
        path=COOKIE_PATH,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # sent when the mediator follows a link from the UI's origin
    )
    return response


@router.get("/disputes/{dispute_id}/evidence/{evidence_id}")
async def open_evidence(
    dispute_id: str,
    evidence_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    expires: Annotated[int, Query()] = 0,
    signature: Annotated[str, Query(max_length=64)] = "",
    console: Annotated[str | None, Cookie(alias=COOKIE)] = None,
) -> Response:
    """One evidence item, for the dispute's assigned mediator, from a signed link."""
    key, now = settings.authority_key, datetime.now(UTC)
    if key is None or not verify_evidence_link(
        key, dispute_id, evidence_id, expires, signature, now
    ):
        raise ProblemError(403, "forbidden", EXPIRED)
    mediator = _mediator(key, console, now)
    if mediator is None:
        return _sign_in(f"{request.url.path}?{request.url.query}")
    party = await session.get(Party, mediator)
    if party is None or party.deactivated_at is not None:  # a token outlives deactivation
        raise ProblemError(403, "forbidden", f"{mediator} is not an active mediator")
    if await session.get(DisputeRecord, dispute_id) is None:
        raise ProblemError(404, "not_found", "No such dispute")
    dispute = await dispute_view(request, temporal, dispute_id)  # texts put back
    if dispute.get("mediator_id") != mediator:
        raise ProblemError(
            403, "forbidden", f"the evidence of {dispute_id} opens for its assigned mediator only"
        )
    item = next((e for e in dispute.get("evidence", []) if e["id"] == evidence_id), None)
    if item is None:
        raise ProblemError(404, "not_found", "No such evidence")
    return _show(settings, item)


def _show(settings, item: dict[str, Any]) -> Response:
    if item["kind"] == "file":
        return evidence_file_response(settings, item)
    if item["kind"] == "link":
        url = html.escape(item.get("url") or "")
        return _page(
            "Evidence link",
            f"<p>{html.escape(item.get('description') or '')}</p>"
            f'<p><a href="{url}" rel="noopener noreferrer nofollow">{url}</a></p>'
            f"<p>sha256 <code>{html.escape(item['sha256'])}</code></p>",
        )
    # A text or a quoted message: plain text, so nothing in it renders or runs.
    return PlainTextResponse(item.get("text") or "", headers=PAGE_HEADERS)
