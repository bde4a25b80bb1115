"""Every route × every role against SPEC §1 (ENGINEERING: "an authorization matrix").

One campaign, created by the brand's authorised agency and funded, with a dispute escalated
to mediation and one mediator assigned. Each row of MATRIX says, for each role, what the SPEC
allows:

- OK: the role may use the route — the answer may still be a 409/422 for the state or the
  body, never 401/403/404 (nor a 5xx);
- 404: the caller is not on the campaign or dispute — it does not exist for them, and the
  answer carries none of its data;
- 403: the caller sees the resource but its role may not do this;
- 401: no API key.

The rows are checked against `app.routes`: a route without a row fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from api.main import create_app
from tests.api.test_campaigns import campaign_body, ok
from tests.api.test_parties import PROBLEM

OK, FORBIDDEN, NOT_FOUND, UNAUTHORIZED = "ok", 403, 404, 401
# A dispute's validators check the stage before the actor (workflows/dispute.py), so a role
# that may not act there hears 409 `invalid_state` outside the stage that action belongs to,
# and 403 in it. Either is a refusal that reveals nothing the caller cannot already see.
REFUSED = "refused"

ROLES = (
    "brand",  # the campaign's brand
    "creator",  # the campaign's creator
    "agency",  # the agency the campaign names (for the brand); it filed the dispute
    "other_agency",  # an agency on nothing
    "stranger",  # another brand
    "mediator",  # assigned to the dispute
    "other_mediator",
    "admin",
    "anonymous",  # no API key
)
MEMBERS = ("brand", "creator", "agency")
OUTSIDERS = ("other_agency", "stranger")
MEDIATORS = ("mediator", "other_mediator")


def everyone(expected, *, anonymous=UNAUTHORIZED, **roles) -> dict[str, Any]:
    return {**dict.fromkeys(ROLES, expected), "anonymous": anonymous, **roles}


def on_campaign(allowed=MEMBERS, *, members=FORBIDDEN, admin=FORBIDDEN, **roles):
    """A campaign's route: outsiders and mediators do not see the campaign (SPEC §1)."""
    expected = everyone(NOT_FOUND, admin=admin)
    expected.update(dict.fromkeys(MEMBERS, members))
    expected.update(dict.fromkeys(allowed, OK))
    return {**expected, **roles}


def on_dispute(allowed, *, refused=FORBIDDEN, admin=FORBIDDEN, **roles):
    """A dispute's route: its parties and — once it reached mediation — every mediator see it."""
    expected = everyone(refused, admin=admin, other_agency=NOT_FOUND, stranger=NOT_FOUND)
    expected.update(dict.fromkeys(allowed, OK))
    return {**expected, **roles}


def only_admin() -> dict[str, Any]:
    return everyone(FORBIDDEN, admin=OK)


@dataclass
class World:
    who: dict[str, Any]  # role → PartyHandle (None for the admin and the anonymous caller)
    campaign_id: str
    dispute_id: str
    evidence_id: str
    notification_id: str  # the brand's
    message_id: str = ""  # the brand's, in the campaign's thread

    def id(self, role: str) -> str:
        return self.who[role].id


Body = Callable[[World, str], Any]
SPLIT = {"release_to_creator": 0, "refund_to_brand": 15_000}


@dataclass
class Row:
    method: str
    path: str
    expected: dict[str, Any]
    body: Body | None = None
    order: list[str] | None = None  # the roles' order, when one call changes the state


def agency_campaign(w: World, _: str) -> dict:
    return {
        **campaign_body(w.id("creator")),
        "brand_id": w.id("brand"),
        "agency_id": w.id("agency"),
        "agency_represents": "brand",
    }


MATRIX: list[Row] = [
    # --- public ----------------------------------------------------------------------------
    *(
        Row("GET", path, everyone(OK, anonymous=OK))
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect")
    ),
    Row("GET", "/redoc", everyone(OK, anonymous=OK)),
    # Swagger UI's and ReDoc's packaged assets (a static mount: any method reaches it).
    Row("ANY", "/docs/assets", everyone(OK, anonymous=OK)),
    # Prometheus scrapes it without a key (an operator endpoint, not an API operation).
    Row("GET", "/metrics", everyone(OK, anonymous=OK)),
    # Stripe signs it; a bearer key changes nothing: unsigned is 400 for everyone.
    Row("POST", "/v1/webhooks/stripe", everyone(400, anonymous=400), lambda w, r: {}),
    # --- parties ---------------------------------------------------------------------------
    Row(
        "POST",
        "/v1/parties",
        only_admin(),
        lambda w, r: {"name": "matrix", "role": "brand", "email": "m@example.com"},
    ),
    Row("GET", "/v1/parties/me", everyone(OK, admin=NOT_FOUND)),  # the admin is not a party
    Row(
        "PATCH",
        "/v1/parties/me",
        everyone(OK, admin=NOT_FOUND),
        lambda w, r: {"email": f"{r}@example.org"},
    ),
    Row("POST", "/v1/parties/me/webhook-secret", everyone(OK, admin=NOT_FOUND)),
    # Each party rotates once; the key it holds here keeps working through the grace period.
    Row("POST", "/v1/parties/me/api-key", everyone(OK, admin=NOT_FOUND)),
    Row("GET", "/v1/parties", only_admin()),
    # The admin deactivates the brand (after the brand's own try: ROLES order), then
    # reactivates it first thing, so the brand hears 403 there like everyone else.
    Row("POST", "/v1/parties/{party_id}/deactivate", only_admin()),
    Row(
        "POST",
        "/v1/parties/{party_id}/reactivate",
        only_admin(),
        order=["admin", *(role for role in ROLES if role != "admin")],
    ),
    Row("GET", "/v1/parties/{party_id}", everyone(OK)),  # profiles are public to callers
    # --- agency grants: a brand or creator authorises; the admin for any party -------------
    Row(
        "POST",
        "/v1/parties/me/agency-grants",
        everyone(FORBIDDEN, brand=OK, creator=OK, stranger=OK),
        lambda w, r: {"agency_id": w.id("spare_agency")},
    ),
    Row(
        "GET",
        "/v1/parties/me/agency-grants",
        everyone(OK, mediator=FORBIDDEN, other_mediator=FORBIDDEN, admin=FORBIDDEN),
    ),
    Row(
        "POST",
        "/v1/parties/me/agency-grants/{agency_id}/revoke",
        everyone(FORBIDDEN, brand=OK, creator=OK, stranger=OK),
    ),
    Row(
        "POST",
        "/v1/parties/{party_id}/agency-grants",
        only_admin(),
        lambda w, r: {"agency_id": w.id("spare_agency")},
    ),
    Row("GET", "/v1/parties/{party_id}/agency-grants", only_admin()),
    Row("POST", "/v1/parties/{party_id}/agency-grants/{agency_id}/revoke", only_admin()),
    # --- campaigns -------------------------------------------------------------------------
    # Brand, or the agency it authorised; another brand or agency may not name this brand.
    Row(
        "POST",
        "/v1/campaigns",
        everyone(FORBIDDEN, brand=OK, agency=OK),
        agency_campaign,
    ),
    Row("GET", "/v1/campaigns", everyone(OK)),  # filtered lists: checked below
    # The assigned mediator reads the posted work it judges (README: choices).
    Row("GET", "/v1/campaigns/{campaign_id}", on_campaign(admin=OK, mediator=OK)),
    # SPEC §8: "parties, mediator"; §9: the assigned mediator.
    Row("GET", "/v1/campaigns/{campaign_id}/timeline", on_campaign(admin=OK, mediator=OK)),
    # Its live form (issue #15): the same readers.
    Row("GET", "/v1/campaigns/{campaign_id}/events", on_campaign(admin=OK, mediator=OK)),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/accept",
        on_campaign(("creator",)),
        lambda w, r: {"contract_hash": "0" * 64},
    ),
    Row("POST", "/v1/campaigns/{campaign_id}/decline", on_campaign(("creator",))),
    Row("POST", "/v1/campaigns/{campaign_id}/fund", on_campaign(("brand", "agency")), None),
    Row("POST", "/v1/campaigns/{campaign_id}/cancel", on_campaign()),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/deliverables/{n}/submit",
        on_campaign(("creator",)),
        lambda w, r: {"url": "https://instagram.com/p/x", "notes": "", "metrics": {}},
    ),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/deliverables/{n}/approve",
        on_campaign(("brand", "agency")),
    ),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/deliverables/{n}/request-changes",
        on_campaign(("brand", "agency")),
        lambda w, r: {"reason": "tag us"},
    ),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/deliverables/{n}/cancel",
        on_campaign(("brand", "agency")),
    ),
    # The admin freezes and unfreezes (in this order: the pair leaves the campaign as it was).
    Row("POST", "/v1/campaigns/{campaign_id}/freeze", on_campaign((), admin=OK)),
    Row("POST", "/v1/campaigns/{campaign_id}/unfreeze", on_campaign((), admin=OK)),
    Row("GET", "/v1/campaigns/{campaign_id}/ledger", on_campaign(admin=OK, mediator=OK)),
    Row("GET", "/v1/ledger", only_admin()),
    # A sweep first, so the admin's read of the latest report finds one.
    Row("POST", "/v1/admin/reconciliation", only_admin()),
    Row("GET", "/v1/admin/reconciliation", only_admin()),
    # Only the admin retries refused payouts; nothing is blocked here (409).
    Row("POST", "/v1/campaigns/{campaign_id}/retry-payouts", on_campaign((), admin=409)),
    # Console tokens for the Temporal UI: mediators only.
    Row(
        "POST",
        "/v1/mediators/me/console-token",
        everyone(FORBIDDEN, mediator=OK, other_mediator=OK),
    ),
    # The Temporal UI's evidence links (api/routes/console.py): a bearer key opens nothing,
    # an unsigned link is refused for everyone, and the console sign-in needs its form.
    Row(
        "GET",
        "/v1/console/disputes/{dispute_id}/evidence/{evidence_id}",
        everyone(FORBIDDEN, anonymous=FORBIDDEN),
    ),
    Row("POST", "/v1/console/session", everyone(422, anonymous=422)),
    # Only the admin restores; a running campaign has nothing to restore (409).
    Row("POST", "/v1/admin/campaigns/{campaign_id}/restore", everyone(FORBIDDEN, admin=409)),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/disputes",
        on_campaign(),
        lambda w, r: {"reason": "again", "claim": SPLIT, "statement": "s"},
    ),
    # The thread: parties, their agency and the assigned mediator (SPEC §6).
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/messages",
        on_campaign(MEMBERS + ("mediator",)),
        lambda w, r: {"body": f"hello from the {r}"},
    ),
    Row(
        "GET",
        "/v1/campaigns/{campaign_id}/messages",
        on_campaign(MEMBERS + ("mediator",), admin=OK),
    ),
    Row(
        "GET",
        "/v1/campaigns/{campaign_id}/messages/stream",
        on_campaign(MEMBERS + ("mediator",), admin=OK),
    ),
    Row(
        "GET",
        "/v1/campaigns/{campaign_id}/messages/{message_id}",
        on_campaign(MEMBERS + ("mediator",), admin=OK),
    ),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/reviews",
        on_campaign(),
        lambda w, r: {"rating": 5, "comment": "great"},
    ),
    Row("GET", "/v1/campaigns/{campaign_id}/reviews", on_campaign(admin=OK)),
    # No review in this world (the campaign is not complete): unknown to everyone.
    Row("GET", "/v1/campaigns/{campaign_id}/reviews/{review_id}", everyone(NOT_FOUND)),
    # --- disputes --------------------------------------------------------------------------
    Row("GET", "/v1/disputes", everyone(OK)),  # filtered lists: checked below
    # Unassigned mediators see the queue summary (tests/api/test_mediator_visibility.py).
    Row("GET", "/v1/disputes/{dispute_id}", on_dispute(MEMBERS + MEDIATORS, admin=OK)),
    Row(
        "GET",
        "/v1/disputes/{dispute_id}/case-file",
        on_dispute(MEMBERS + ("mediator",), admin=OK),
    ),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/evidence",
        on_dispute(MEMBERS + ("mediator",)),
        lambda w, r: {"kind": "text", "text": f"evidence from the {r}"},
    ),
    # Downloads: an unassigned mediator sees the item's metadata in the summary but not its
    # content, and is answered as for an unknown item.
    Row(
        "GET",
        "/v1/disputes/{dispute_id}/evidence/{evidence_id}",
        on_dispute(MEMBERS + ("mediator",), admin=OK, other_mediator=NOT_FOUND),
    ),
    # Party actions (the dispute is in mediation: allowed ones are 409s for the stage).
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/respond",
        on_dispute(("creator",), refused=REFUSED),
        lambda w, r: {"statement": "no"},
    ),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/offers",
        on_dispute(MEMBERS, refused=REFUSED),
        lambda w, r: SPLIT,
    ),
    # No offer in this world (the dispute is in mediation): unknown to everyone.
    Row("GET", "/v1/disputes/{dispute_id}/offers/{offer_id}", everyone(NOT_FOUND)),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/offers/{offer_id}/accept",
        on_dispute(MEMBERS, refused=REFUSED),
    ),
    Row("POST", "/v1/disputes/{dispute_id}/escalate", on_dispute(MEMBERS, refused=REFUSED)),
    Row("POST", "/v1/disputes/{dispute_id}/proposal/accept", on_dispute(MEMBERS, refused=REFUSED)),
    Row("POST", "/v1/disputes/{dispute_id}/proposal/reject", on_dispute(MEMBERS, refused=REFUSED)),
    # Mediator actions; the admin only (re)assigns (SPEC §1).
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/assign",
        on_dispute(MEDIATORS, admin=OK),
        # Each mediator tries itself, the admin the assigned one: all 409s, nothing moves.
        lambda w, r: {"mediator_id": w.id(r) if r in MEDIATORS else w.id("mediator")},
    ),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/request-evidence",
        on_dispute(("mediator",)),
        lambda w, r: {"note": "show the post"},
    ),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/proposal",
        on_dispute(("mediator",)),
        # An inexact split: the assigned mediator's 422 leaves the stage where it is.
        lambda w, r: {"release_to_creator": 1, "refund_to_brand": 1, "rationale": "r"},
    ),
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/ruling",
        # Parties are refused by the API (403); the other mediator by the workflow, which
        # checks the stage (arbitration) first.
        on_dispute(("mediator",), refused=REFUSED, **dict.fromkeys(MEMBERS, FORBIDDEN)),
        lambda w, r: {**SPLIT, "rationale": "r"},
    ),
    # --- integrations (issue #15): the admin issues keys; only a key posts snapshots ---------
    Row("POST", "/v1/integrations", only_admin(), lambda w, r: {"name": "analytics"}),
    Row("GET", "/v1/integrations/{integration_id}", everyone(FORBIDDEN, admin=NOT_FOUND)),
    Row(
        "POST",
        "/v1/integrations/{integration_id}/revoke",
        everyone(FORBIDDEN, admin=NOT_FOUND),
    ),
    Row(
        "POST",
        "/v1/campaigns/{campaign_id}/deliverables/{n}/metrics",
        everyone(UNAUTHORIZED),  # a party's key or the admin token is not an integration key
        lambda w, r: {"metrics": {"views": 1}},
    ),
    # --- notifications: one's own ----------------------------------------------------------
    Row("GET", "/v1/notifications", everyone(OK, admin=FORBIDDEN)),
    Row(
        "POST",
        "/v1/notifications/{notification_id}/read",
        everyone(NOT_FOUND, brand=OK, admin=FORBIDDEN),
    ),
    # Last: the claimant's side withdraws the dispute (the brand does; the agency then hears
    # 409). Everyone else first, while it is still in mediation.
    Row(
        "POST",
        "/v1/disputes/{dispute_id}/withdraw",
        on_dispute(("brand", "agency")),
        order=[
            "creator",
            "other_agency",
            "stranger",
            "mediator",
            "other_mediator",
            "admin",
            "anonymous",
            "brand",
            "agency",
        ],
    ),
]

# Routes found breaking SPEC §1/§8 outside this change, each with why; the test fails when one
# is fixed (remove it here) as well as when a new one appears.
KNOWN_VIOLATIONS: dict[tuple[str, str, str], str] = {}


def api_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route; FastAPI ≥ 0.16x keeps an included router as one entry."""
    found: set[tuple[str, str]] = set()

    def walk(routes) -> None:
        for route in routes:
            if (contexts := getattr(route, "effective_route_contexts", None)) is not None:
                walk(contexts())
                continue
            methods = getattr(route, "methods", None) or {"ANY"}  # a mount needs a row too
            found.update((m, route.path) for m in methods if m != "HEAD")

    walk(app.routes)
    return found


def test_every_route_has_a_row(settings):
    rows = [(row.method, row.path) for row in MATRIX]
    assert len(rows) == len(set(rows)), "a route has two rows"
    routes = api_routes(create_app(settings))
    assert routes - set(rows) == set(), "routes without a row in MATRIX"
    assert set(rows) - routes == set(), "rows for routes that do not exist"
    assert all(set(row.expected) == set(ROLES) for row in MATRIX)


async def build_world(api, make_party) -> World:
    who: dict[str, Any] = {"admin": None, "anonymous": None}
    for role, kind in (
        ("brand", "brand"),
        ("creator", "creator"),
        ("agency", "agency"),
        ("other_agency", "agency"),
        ("stranger", "brand"),
        ("mediator", "mediator"),
        ("other_mediator", "mediator"),
        ("spare_agency", "agency"),  # what the grant rows grant and revoke
    ):
        extra = {"stripe_account": "acct_creator1"} if kind == "creator" else {}
        who[role] = await make_party(kind, **extra)
    brand, creator, agency = who["brand"].client, who["creator"].client, who["agency"].client
    grants = "/v1/parties/me/agency-grants"
    await ok(await brand.post(grants, json={"agency_id": who["agency"].id}), 201)
    for role in ("brand", "creator", "stranger"):
        spare = {"agency_id": who["spare_agency"].id}
        await ok(await who[role].client.post(grants, json=spare), 201)

    w = World(who=who, campaign_id="", dispute_id="", evidence_id="", notification_id="")
    created = await ok(await agency.post("/v1/campaigns", json=agency_campaign(w, "agency")), 201)
    cid = w.campaign_id = created["id"]
    await ok(
        await creator.post(
            f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    await ok(await agency.post(f"/v1/campaigns/{cid}/fund", json={}))
    said = await ok(
        await brand.post(f"/v1/campaigns/{cid}/messages", json={"body": "where is it?"}), 201
    )
    w.message_id = said["id"]
    filing = {"reason": "not delivered", "claim": SPLIT, "statement": "nothing posted"}
    did = w.dispute_id = (
        await ok(await agency.post(f"/v1/campaigns/{cid}/disputes", json=filing), 201)
    )["id"]
    evidence = {"kind": "text", "text": "the brief said two posts"}
    await ok(await brand.post(f"/v1/disputes/{did}/evidence", json=evidence), 201)
    w.evidence_id = (await ok(await brand.get(f"/v1/disputes/{did}")))["evidence"][-1]["id"]
    await ok(await creator.post(f"/v1/disputes/{did}/respond", json={"statement": "I posted"}))
    escalated = await ok(await creator.post(f"/v1/disputes/{did}/escalate"))
    assert escalated["stage"] == "mediation"
    mediator = who["mediator"]
    await ok(
        await mediator.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": mediator.id})
    )
    inbox = await ok(await brand.get("/v1/notifications"))
    w.notification_id = inbox["items"][0]["id"]
    return w


def url_of(row: Row, w: World) -> str:
    return row.path.format(
        campaign_id=w.campaign_id,
        dispute_id=w.dispute_id,
        evidence_id=w.evidence_id,
        notification_id=w.notification_id,
        party_id=w.id("brand"),
        agency_id=w.id("spare_agency"),
        offer_id="off_unknown",
        message_id=w.message_id,
        review_id=1,
        integration_id="int_unknown",
        n=0,
    )


async def call(client: httpx.AsyncClient, row: Row, w: World, role: str) -> httpx.Response:
    url = url_of(row, w)
    body = row.body(w, role) if row.body else None
    if url.endswith(("/stream", "/events")):  # endless event streams: the status line is enough
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
            return response
    return await client.request(row.method, url, json=body)


def verdict(expected, response: httpx.Response) -> bool:
    status = response.status_code
    if expected == OK:
        return status not in (401, 403, 404) and status < 500
    if expected == REFUSED:
        refusal = (status, response.json().get("code"))
        return refusal in ((403, "forbidden"), (409, "invalid_state"))
    if status != expected:
        return False
    if status in (401, 403, 404):  # a problem document, and nothing of the resource
        assert response.headers["content-type"].startswith(PROBLEM), response.text
        assert response.json()["code"] in ("unauthorized", "forbidden", "not_found")
    return True


async def test_authorization_matrix(api, make_party):
    w = await build_world(api, make_party)
    async with AsyncExitStack() as stack:
        clients = {role: w.who[role].client for role in ROLES if role not in ("admin", "anonymous")}
        clients["admin"] = api.http
        clients["anonymous"] = await stack.enter_async_context(
            httpx.AsyncClient(base_url=api.base_url, timeout=30)
        )
        mismatches: dict[tuple[str, str, str], str] = {}
        for row in MATRIX:
            for role in row.order or ROLES:
                response = await call(clients[role], row, w, role)
                expected = row.expected[role]
                if not verdict(expected, response):
                    mismatches[(row.method, row.path, role)] = (
                        f"expected {expected}, got {response.status_code} {response.text[:200]}"
                    )

        # Lists never show another party's campaign or dispute.
        for role in OUTSIDERS + MEDIATORS:
            listed = await ok(await clients[role].get("/v1/campaigns"))
            assert w.campaign_id not in [c["id"] for c in listed["items"]], role
        for role in OUTSIDERS:
            listed = await ok(await clients[role].get("/v1/disputes"))
            assert w.dispute_id not in [d["id"] for d in listed["items"]], role

    unexpected = {k: v for k, v in mismatches.items() if k not in KNOWN_VIOLATIONS}
    fixed = set(KNOWN_VIOLATIONS) - set(mismatches)
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert not fixed, f"fixed, remove from KNOWN_VIOLATIONS: {fixed}"
