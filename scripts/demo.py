"""`make demo`: one campaign, start to finish, through a running `make dev` stack.

Creates its own brand and creator (so it can run again and again), then drives a
two-deliverable campaign with short terms through the HTTP API: create → accept → fund →
submit #0 → request changes → resubmit #0 → approve #0 → release #0 (clearing period) →
submit #1 and stay silent → auto-approval (review window) → release #1 → completed.
Each step prints one line: the campaign's status, its deliverables' statuses and the escrow.
Timer-driven steps poll `GET /v1/campaigns/{id}` until the condition holds or a deadline
passes. Ends with where to look in the Temporal UI and the campaign's timeline.

Reads the same PARLEY_* variables as `make dev` (ports, data dir, admin token).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from config import Settings

TERMS = {
    "acceptance_window": "PT1M",
    "funding_window": "PT1M",
    "review_window": "PT3S",
    "clearing_period": "PT2S",
    "cancellation_window": "PT1M",
    "review_period": "PT5S",
    "response_window": "PT1M",
    "negotiation_window": "PT1M",
    "mediation_window": "PT1M",
    "proposal_window": "PT1M",
    "arbitration_window": "PT1M",
}
AMOUNTS = (10_000, 5_000)  # minor units (eur)
ESCROW_FIELDS = ("funded", "held", "released_to_creator", "platform_fee", "refunded_to_brand")
POLL_INTERVAL = 0.2
# A timer-driven step gets its window plus this much slack before the demo gives up.
POLL_SLACK = 30.0
WORK = {
    "url": "https://instagram.com/p/parley-demo",
    "notes": "live on the feed",
    "metrics": {"views": 1200, "likes": 87},
}


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


def api_url(settings: Settings) -> str:
    # A wildcard bind address is not something to connect to (as in scripts/dev.py).
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def admin_token(settings: Settings) -> str:
    """PARLEY_ADMIN_TOKEN, else the token `make dev` keeps in the data dir."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin-token"
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        raise DemoError(
            f"no admin token: set PARLEY_ADMIN_TOKEN or start `make dev` (it writes {path})"
        )
    return token


def check_ready(http: httpx.Client, base_url: str) -> None:
    try:
        response = http.get("/readyz")
    except httpx.TransportError as exc:
        raise DemoError(
            f"the Parley stack is not running: nothing answers at {base_url} ({exc}).\n"
            "Start it with `make dev` (same PARLEY_* variables) in another terminal."
        ) from None
    if response.status_code != 200:
        raise DemoError(
            f"the Parley stack is not ready: GET {base_url}/readyz answered "
            f"{response.status_code}: {response.text[:500]}"
        )


def expect(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise DemoError(
            f"{what}: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (expected {status}): {response.text[:1000]}"
        )
    return response.json()


class Party:
    def __init__(self, base_url: str, party_id: str, api_key: str) -> None:
        self.id = party_id
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )

    def post(self, path: str, what: str, body: dict[str, Any] | None = None, status: int = 200):
        # A fresh Idempotency-Key per action: a retry of this very call would be deduplicated.
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return expect(self.http.post(path, json=body or {}, headers=headers), status, what)

    def get(self, path: str, what: str, **params: Any) -> dict[str, Any]:
        return expect(self.http.get(path, params=params), 200, what)


def create_party(admin: httpx.Client, base_url: str, role: str, **extra: str) -> Party:
    suffix = uuid.uuid4().hex[:6]
    body = {"name": f"Demo {role} {suffix}", "role": role, "email": f"{role}-{suffix}@example.com"}
    data = expect(admin.post("/v1/parties", json={**body, **extra}), 201, f"creating a {role}")
    return Party(base_url, data["id"], data["api_key"])


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.step = 0

    def show(self, label: str, state: dict[str, Any]) -> None:
        self.step += 1
        deliverables = ", ".join(
            f"#{d['index']} {d['status']}" + (f" by {d['approved_by']}" if d["approved_by"] else "")
            for d in state["deliverables"]
        )
        escrow = " ".join(f"{k}={state['escrow'][k]}" for k in ESCROW_FIELDS)
        print(
            f"[{time.monotonic() - self.started:5.1f}s] {self.step:2d}. {label:<34} "
            f"status={state['status']:<20} deliverables: {deliverables:<48} escrow: {escrow}",
            flush=True,
        )


def wait_for(
    party: Party,
    campaign_id: str,
    condition: Callable[[dict[str, Any]], bool],
    what: str,
    within: float,
) -> dict[str, Any]:
    """Polls the authoritative state until `condition` holds, or fails after `within` s."""
    deadline = time.monotonic() + within
    while True:
        state = party.get(f"/v1/campaigns/{campaign_id}", "reading the campaign")
        if condition(state):
            return state
        if time.monotonic() > deadline:
            raise DemoError(
                f"timed out after {within:.0f} s waiting for {what}; last state: "
                f"status={state['status']} deliverables="
                f"{[d['status'] for d in state['deliverables']]} escrow={state['escrow']}"
            )
        time.sleep(POLL_INTERVAL)


def deliverable_is(index: int, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda state: state["deliverables"][index]["status"] == status


def check_escrow(state: dict[str, Any]) -> None:
    """SPEC §2: the ledger is exact, and two releases of 10 % fee leave these figures."""
    escrow, budget = state["escrow"], sum(AMOUNTS)
    parts = ("held", "released_to_creator", "agency_commission", "platform_fee")
    total = sum(escrow[k] for k in parts) + escrow["refunded_to_brand"]
    fee = sum(a * state["terms"]["platform_fee_bps"] // 10_000 for a in AMOUNTS)
    expected = {
        "funded": budget,
        "held": 0,
        "released_to_creator": budget - fee,
        "platform_fee": fee,
        "refunded_to_brand": 0,
    }
    if total != escrow["funded"] or any(escrow[k] != v for k, v in expected.items()):
        raise DemoError(f"unexpected final escrow {escrow}, expected {expected}")


def run_demo(settings: Settings) -> None:
    base_url = api_url(settings)
    seconds = {"review_window": 3.0, "clearing_period": 2.0}
    with httpx.Client(base_url=base_url, timeout=30) as anonymous:
        check_ready(anonymous, base_url)
    token = admin_token(settings)
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as admin:
        brand = create_party(admin, base_url, "brand")
        creator = create_party(
            admin, base_url, "creator", stripe_account=f"acct_demo{uuid.uuid4().hex[:12]}"
        )
    print(f"API {base_url} · brand {brand.id} · creator {creator.id}")
    print(f"terms: {', '.join(f'{k} {v}' for k, v in TERMS.items() if v != 'PT1M')}, others PT1M")

    say = Narrator()
    body = {
        "title": "Parley demo: spring launch",
        "brief": "Two posts about the new line",
        "creator_id": creator.id,
        "currency": "eur",
        "deliverables": [
            {"title": f"Post {i}", "description": "A reel with the product", "amount": amount}
            for i, amount in enumerate(AMOUNTS)
        ],
        "terms": TERMS,
    }
    created = brand.post("/v1/campaigns", "creating the campaign", body, status=201)
    cid = created["id"]
    path = f"/v1/campaigns/{cid}"
    say.show(f"created {cid}", created)
    say.show(
        "accepted (contract_hash matches)",
        creator.post(f"{path}/accept", "accepting", {"contract_hash": created["contract_hash"]}),
    )
    say.show("funded (sandbox rail)", brand.post(f"{path}/fund", "funding"))
    say.show("submitted #0", creator.post(f"{path}/deliverables/0/submit", "submitting #0", WORK))
    say.show(
        "brand requested changes on #0",
        brand.post(
            f"{path}/deliverables/0/request-changes",
            "requesting changes",
            {"reason": "please tag @parley in the caption"},
        ),
    )
    say.show(
        "resubmitted #0",
        creator.post(
            f"{path}/deliverables/0/submit",
            "resubmitting #0",
            {**WORK, "notes": "tagged @parley as asked"},
        ),
    )
    say.show("brand approved #0", brand.post(f"{path}/deliverables/0/approve", "approving #0"))
    say.show(
        "#0 released after clearing_period",
        wait_for(
            brand,
            cid,
            deliverable_is(0, "released"),
            "the release of #0",
            seconds["clearing_period"] + POLL_SLACK,
        ),
    )
    say.show(
        "submitted #1, brand stays silent",
        creator.post(f"{path}/deliverables/1/submit", "submitting #1", WORK),
    )
    auto = wait_for(
        brand,
        cid,
        lambda s: s["deliverables"][1]["approved_by"] == "auto",
        "the auto-approval of #1",
        seconds["review_window"] + POLL_SLACK,
    )
    say.show("#1 auto-approved by silence", auto)
    say.show(
        "#1 released after clearing_period",
        wait_for(
            brand,
            cid,
            deliverable_is(1, "released"),
            "the release of #1",
            seconds["clearing_period"] + POLL_SLACK,
        ),
    )
    done = wait_for(brand, cid, lambda s: s["status"] == "completed", "completion", POLL_SLACK)
    say.show("completed", done)
    check_escrow(done)
    if done["deliverables"][1]["approved_by"] != "auto":
        raise DemoError(f"#1 should be approved by silence: {done['deliverables'][1]}")

    kinds: list[str] = []
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = brand.get(f"{path}/timeline", "reading the timeline", limit=500, **extra)
        kinds += [event["kind"] for event in page["items"]]
        if not (cursor := page.get("next_cursor")):
            break

    ui = f"http://127.0.0.1:{settings.ui_port}/namespaces/{settings.temporal_namespace}"
    visibility = f'ParleyCampaign="{cid}"'
    print()
    print(f"Escrow exact: funded {done['escrow']['funded']} = held + released + fee + refunded.")
    print("Temporal UI:")
    print(f"  workflow    {ui}/workflows/campaign-{cid}")
    print(f"  visibility  {visibility}")
    print(f"              {ui}/workflows?query={quote(visibility)}")
    print(f"Timeline ({len(kinds)} events): {' → '.join(kinds)}")
    print(f"(The workflow closes review_period {TERMS['review_period']} after completion.)")
    for party in (brand, creator):
        party.http.close()


def main() -> None:
    try:
        run_demo(Settings())
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except httpx.HTTPError as exc:
        print(f"demo failed: the API stopped answering: {exc!r}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
