"""`make demo`: one campaign, start to finish, through a running `make dev` stack.

Creates its own brand and creator (so it can run again and again), then drives a
two-deliverable campaign with short terms through the HTTP API: create → accept → fund →
submit #0 → request changes → resubmit #0 → approve #0 → release #0 (clearing period) →
submit #1 and stay silent → auto-approval (review window) → release #1 → completed.
Each step prints one line: the campaign's status, its deliverables' statuses and the escrow.
Timer-driven steps poll `GET /v1/campaigns/{id}` until the condition holds or a deadline
passes. Ends with where to look in the Temporal UI and the campaign's timeline.

Then a dispute, on a second campaign with the same short terms but ten-minute dispute windows
(so no dispute deadline runs out while the demo speaks): create → accept → fund → the brand
files over both deliverables claiming everything back → the creator adds evidence (a generated
PNG, a link) and responds → an offer from each side, neither accepted → the brand escalates →
a fresh mediator self-assigns, requests evidence, proposes a settlement → the creator rejects
it → the mediator rules → the campaign settles. Each step prints the dispute's stage; the end
shows the exact escrow, the case file's digest (checked locally) and the Temporal UI queues.

Last, proof of performance (issue #15): an integration key reports a post's views (half the
target) and the pro-rata rule releases 30 % + 70 % × ½ and refunds the rest; then a post
reported taken down is not restored within its cure window and the platform files a dispute
with the post's snapshots as evidence.

Reads the same PARLEY_* variables as `make dev` (ports, data dir, admin token).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import time
import uuid
import zlib
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
# The dispute's campaign: the same terms, but no dispute deadline runs out during the demo.
DISPUTE_WINDOWS = (
    "response_window",
    "negotiation_window",
    "mediation_window",
    "proposal_window",
    "arbitration_window",
)
DISPUTE_TERMS = {**TERMS, **dict.fromkeys(DISPUTE_WINDOWS, "PT10M")}
AMOUNTS = (10_000, 5_000)  # minor units (eur)
RULING = (7_500, 7_500)  # the mediator's binding split: release to creator, refund to brand
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

    def post_file(
        self, path: str, what: str, file: tuple[str, bytes, str], description: str
    ) -> dict[str, Any]:
        """A multipart upload (`file` = name, bytes, content type), with its own key too."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        response = self.http.post(
            path, files={"file": file}, data={"description": description}, headers=headers
        )
        return expect(response, 201, what)

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

    def show_dispute(self, label: str, dispute: dict[str, Any]) -> None:
        self.step += 1
        offers = dispute["offers"]
        parts = [f"stage={dispute['stage']:<19}"]
        if dispute.get("deadline"):
            parts.append(f"deadline {dispute['deadline'][11:19]}Z")
        parts.append(f"evidence={len(dispute['evidence'])}")
        parts.append(f"offers={len(offers)} ({sum(o['status'] == 'open' for o in offers)} open)")
        if dispute["mediator_id"]:
            parts.append(f"mediator={dispute['mediator_id']}")
        if dispute["outcome"]:
            outcome = dispute["outcome"]
            parts.append(
                f"outcome: {outcome['release_to_creator']} to creator, "
                f"{outcome['refund_to_brand']} to brand, by {outcome['by']}"
            )
        print(
            f"[{time.monotonic() - self.started:5.1f}s] {self.step:2d}. {label:<34} "
            + "  ".join(parts),
            flush=True,
        )


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A real PNG (RGB gradient), built here so the demo ships no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00"  # filter type: none
        + b"".join(
            bytes((x * 255 // (width - 1), y * 255 // (height - 1), 160)) for x in range(width)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
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


def check_ledger(escrow: dict[str, Any]) -> None:
    """SPEC §2: funded == held + released_to_creator + agency_commission + platform_fee +
    refunded_to_brand, and no component negative."""
    parts = ("held", "released_to_creator", "agency_commission", "platform_fee")
    total = sum(escrow[k] for k in parts) + escrow["refunded_to_brand"]
    if total != escrow["funded"] or any(value < 0 for value in escrow.values()):
        raise DemoError(f"the escrow ledger is not exact: {escrow}")


def campaign_body(creator: Party, title: str, terms: dict[str, str]) -> dict[str, Any]:
    return {
        "title": title,
        "brief": "Two posts about the new line",
        "creator_id": creator.id,
        "currency": "eur",
        "deliverables": [
            {"title": f"Post {i}", "description": "A reel with the product", "amount": amount}
            for i, amount in enumerate(AMOUNTS)
        ],
        "terms": terms,
    }


def run_demo(settings: Settings) -> None:
    base_url = api_url(settings)
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
        # A fresh mediator each run: its own queue in the Temporal UI starts empty.
        mediator = create_party(admin, base_url, "mediator")
        # An analytics integration that reports the posts' figures (proof of performance).
        integration_key = expect(
            admin.post("/v1/integrations", json={"name": "Demo analytics"}),
            201,
            "issuing an integration key",
        )["api_key"]
    print(f"API {base_url} · brand {brand.id} · creator {creator.id} · mediator {mediator.id}")
    try:
        campaign_part(settings, brand, creator)
        dispute_part(settings, brand, creator, mediator)
        proof_part(base_url, brand, creator, integration_key)
    finally:
        for party in (brand, creator, mediator):
            party.http.close()


def campaign_part(settings: Settings, brand: Party, creator: Party) -> None:
    seconds = {"review_window": 3.0, "clearing_period": 2.0}
    print(f"terms: {', '.join(f'{k} {v}' for k, v in TERMS.items() if v != 'PT1M')}, others PT1M")
    say = Narrator()
    body = campaign_body(creator, "Parley demo: spring launch", TERMS)
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
        page = brand.get(f"{path}/timeline", "reading the timeline", limit=100, **extra)
        kinds += [event["type"] for event in page["items"]]
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


def dispute_part(settings: Settings, brand: Party, creator: Party, mediator: Party) -> None:
    budget = sum(AMOUNTS)
    print()
    print(f"A dispute, on a second campaign: same terms, but {', '.join(DISPUTE_WINDOWS)} PT10M")
    say = Narrator()
    body = campaign_body(creator, "Parley demo: summer collab", DISPUTE_TERMS)
    created = brand.post("/v1/campaigns", "creating the second campaign", body, status=201)
    cid = created["id"]
    path = f"/v1/campaigns/{cid}"
    say.show(f"created {cid}", created)
    accept = {"contract_hash": created["contract_hash"]}
    say.show("accepted", creator.post(f"{path}/accept", "accepting", accept))
    say.show("funded", brand.post(f"{path}/fund", "funding"))

    filing = {
        "reason": "not delivered",
        "deliverables": list(range(len(AMOUNTS))),
        "claim": {"release_to_creator": 0, "refund_to_brand": budget},
        "statement": "Neither post went live on the agreed dates; we want the budget back.",
    }
    dispute = brand.post(f"{path}/disputes", "filing the dispute", filing, status=201)
    did = dispute["id"]
    dpath = f"/v1/disputes/{did}"
    say.show_dispute(f"brand filed {did}", dispute)
    say.show("campaign: deliverables frozen", brand.get(path, "reading the campaign"))

    png = tiny_png()
    upload = creator.post_file(
        f"{dpath}/evidence",
        "uploading a screenshot",
        ("post-0.png", png, "image/png"),
        "Screenshot of post #0, live on the feed",
    )
    if upload["sha256"] != hashlib.sha256(png).hexdigest():
        raise DemoError(f"the PNG's recorded sha256 {upload['sha256']} is not its content's")
    download = brand.http.get(f"{dpath}/evidence/{upload['id']}")
    if download.status_code != 200 or download.content != png:
        raise DemoError(f"the brand could not download the PNG back: {download.status_code}")
    link = {"kind": "link", "url": WORK["url"], "description": "The post itself"}
    creator.post(f"{dpath}/evidence", "adding a link", link, status=201)
    say.show_dispute(
        f"creator: {len(png)} B PNG + a link", creator.get(dpath, "reading the dispute")
    )
    response = {"statement": "Post #0 is live (see the screenshot); #1 is scheduled."}
    say.show_dispute("creator responded", creator.post(f"{dpath}/respond", "responding", response))
    for party, label, split in (
        (creator, "creator offered", (12_000, 3_000)),
        (brand, "brand countered", (4_000, 11_000)),
    ):
        offer = {"release_to_creator": split[0], "refund_to_brand": split[1]}
        party.post(f"{dpath}/offers", "making an offer", offer, status=201)  # answers the Offer
        say.show_dispute(f"{label} {split[0]}/{split[1]}", party.get(dpath, "reading the dispute"))
    say.show_dispute("brand escalated (offers open)", brand.post(f"{dpath}/escalate", "escalating"))

    queue = mediator.get("/v1/disputes", "reading the mediation queue", stage="mediation")
    if did not in [d["id"] for d in queue["items"]]:
        raise DemoError(f"{did} is not in the mediators' queue: {queue}")
    assign = {"mediator_id": mediator.id}
    assigned = mediator.post(f"{dpath}/assign", "assigning", assign)
    say.show_dispute("mediator self-assigned", assigned)
    ask = {"note": "Please show post #1's schedule or draft.", "from_side": "creator"}
    say.show_dispute(
        "mediator requested evidence",
        mediator.post(f"{dpath}/request-evidence", "requesting evidence", ask),
    )
    proposal = {
        "release_to_creator": 9_000,
        "refund_to_brand": 6_000,
        "rationale": "Post #0 was delivered, post #1 was not.",
    }
    say.show_dispute(
        "mediator proposed 9000/6000", mediator.post(f"{dpath}/proposal", "proposing", proposal)
    )
    say.show_dispute(
        "creator rejected the proposal", creator.post(f"{dpath}/proposal/reject", "rejecting")
    )
    release, refund = RULING
    ruling = {
        "release_to_creator": release,
        "refund_to_brand": refund,
        "rationale": "Post #0 went live late and #1 not at all; the work is worth half.",
    }
    ruled = mediator.post(f"{dpath}/ruling", "ruling", ruling)
    say.show_dispute("mediator ruled (binding)", ruled)
    expected_outcome = {"release_to_creator": release, "refund_to_brand": refund, "by": "ruling"}
    if ruled["outcome"] != expected_outcome:
        raise DemoError(f"unexpected outcome {ruled['outcome']}, expected {expected_outcome}")

    settled = wait_for(brand, cid, lambda s: s["dispute_id"] is None, "the settlement", POLL_SLACK)
    say.show("campaign settled", settled)
    escrow = settled["escrow"]
    check_ledger(escrow)
    fee = release * settled["terms"]["platform_fee_bps"] // 10_000
    expected = {
        "funded": budget,
        "held": 0,
        "released_to_creator": release - fee,
        "agency_commission": 0,
        "platform_fee": fee,
        "refunded_to_brand": refund,
    }
    if any(escrow[k] != v for k, v in expected.items()):
        raise DemoError(f"unexpected escrow after the ruling {escrow}, expected {expected}")
    if {d["status"] for d in settled["deliverables"]} != {"settled"}:
        raise DemoError(f"the deliverables should be settled: {settled['deliverables']}")

    case = brand.get(f"{dpath}/case-file", "reading the case file")
    canonical = json.dumps(
        case["case_file"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    if hashlib.sha256(canonical).hexdigest() != case["sha256"]:
        raise DemoError(f"the case file's digest {case['sha256']} does not match its content")
    bundle = case["case_file"]

    ui = f"http://127.0.0.1:{settings.ui_port}/namespaces/{settings.temporal_namespace}"
    queues = {
        "unassigned": 'ParleyStage="mediation" AND ParleyMediator IS NULL',
        "mine": f'ParleyMediator="{mediator.id}"',
        "overdue": 'WorkflowType="DisputeWorkflow" AND ParleyOverdue=true',
    }
    print()
    print(
        "Escrow exact: funded {funded} = held {held} + released_to_creator {released_to_creator}"
        " + agency_commission {agency_commission} + platform_fee {platform_fee}"
        " + refunded_to_brand {refunded_to_brand}".format(**escrow)
    )
    print(
        f"Case file sha256 {case['sha256']} (recomputed here over its canonical JSON: "
        f"matches) · {len(bundle['evidence'])} evidence, {len(bundle['offers'])} offers, "
        f"proposal, ruling, {len(bundle['timeline'])} timeline events"
    )
    print(f"Dispute timeline: {' → '.join(e['type'] for e in bundle['timeline'])}")
    print("Temporal UI:")
    print(f"  dispute     {ui}/workflows/dispute-{did}")
    for name, query in queues.items():
        print(f"  {name:<11} {query}")
        print(f"              {ui}/workflows?query={quote(query)}")
    print("(Resolved: of the three, only `mine` still lists this dispute, as a closed workflow.)")


# Proof of performance (issue #15): a post that must stay live and reach 10,000 views. The
# post URL is one the worker's `link` provider will not call (reserved `.invalid` domain), so
# the demo's integration is the only source of figures, whatever provider `make dev` runs.
PROOF_AMOUNT = 10_000
PROOF_WORK = {"url": "https://parley-demo.invalid/p/reel", "notes": "live", "metrics": {}}


def proof_campaign(brand: Party, creator: Party, title: str, **proof: Any) -> str:
    """A funded one-deliverable campaign under proof terms, submitted and approved."""
    body = {
        "title": title,
        "brief": "One reel that must stay live",
        "creator_id": creator.id,
        "currency": "eur",
        "deliverables": [{"title": "Reel", "amount": PROOF_AMOUNT, **proof}],
        "terms": TERMS,
    }
    created = brand.post("/v1/campaigns", "creating a proof campaign", body, status=201)
    cid = created["id"]
    creator.post(
        f"/v1/campaigns/{cid}/accept", "accepting", {"contract_hash": created["contract_hash"]}
    )
    brand.post(f"/v1/campaigns/{cid}/fund", "funding")
    creator.post(f"/v1/campaigns/{cid}/deliverables/0/submit", "submitting", PROOF_WORK)
    brand.post(f"/v1/campaigns/{cid}/deliverables/0/approve", "approving")
    return cid


def proof_part(base_url: str, brand: Party, creator: Party, integration_key: str) -> None:
    say = Narrator()
    analytics = Party(base_url, "integration", integration_key)
    print()
    print("Proof of performance: live for PT6S, 10,000 views within PT4S, pro rata, floor 30 %")
    cid = proof_campaign(
        brand,
        creator,
        "Demo: proof of performance",
        live_for="PT6S",
        objectives=[{"metric": "views", "target": 10_000, "within": "PT4S"}],
        payout_rule={"kind": "pro_rata", "floor_bps": 3_000},
    )
    path = f"/v1/campaigns/{cid}/deliverables/0/metrics"
    for views in (2_500, 5_000):
        seen = analytics.post(path, "reporting metrics", {"metrics": {"views": views}}, 202)
        state = brand.get(f"/v1/campaigns/{cid}", "reading the campaign")
        progress = state["deliverables"][0]["objectives"][0]["progress"]
        say.show(f"views {views:,} (snapshot {seen['id']})", state)
        print(f"      progress {progress['achieved']:,}/10,000 · sha256 {seen['sha256'][:16]}…")
    released = wait_for(brand, cid, deliverable_is(0, "released"), "the release", POLL_SLACK)
    say.show("released on proof", released)
    escrow = released["escrow"]
    check_ledger(escrow)
    paid = escrow["released_to_creator"] + escrow["platform_fee"]
    if (paid, escrow["refunded_to_brand"]) != (6_500, 3_500):
        raise DemoError(f"expected 30 % + 70 % × ½ = 6,500 released, 3,500 refunded: {escrow}")
    print("      half the views: 30 % + 70 % × ½ = 6,500 released (fee taken), 3,500 refunded")

    print()
    print("Takedown: live for PT1M, cure window PT3S; the integration reports the post gone")
    cid = proof_campaign(brand, creator, "Demo: takedown", live_for="PT1M", cure_window="PT3S")
    path = f"/v1/campaigns/{cid}/deliverables/0/metrics"
    analytics.post(path, "reporting the takedown", {"reachable": False}, 202)
    down = brand.get(f"/v1/campaigns/{cid}", "reading the campaign")
    say.show("post down: release paused", down)
    print(f"      cure by {down['deliverables'][0]['tracking']['cure_by']}")
    disputed = wait_for(brand, cid, lambda s: s["dispute_id"], "the takedown dispute", POLL_SLACK)
    say.show("not restored: dispute filed", disputed)
    dispute = brand.get(f"/v1/disputes/{disputed['dispute_id']}", "reading the dispute")
    [evidence] = dispute["evidence"]
    print(
        f"      dispute {dispute['id']} ({dispute['reason']}): evidence by "
        f"{evidence['submitted_by']}, sha256 {evidence['sha256'][:16]}…"
    )
    for line in (evidence.get("text") or "").splitlines()[:4]:
        print(f"        {line[:140]}")
    analytics.http.close()


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
