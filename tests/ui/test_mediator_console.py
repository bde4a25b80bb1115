"""The mediator console is the Temporal UI (SPEC §5, issue #12), tested in a real browser.

playwright-core (npm, pinned in package.json) drives Debian's chromium through the Temporal UI
of a dev server of this module's own, with the Parley API over real HTTP and a real worker —
one stack and one browser for every test here (tests/ui/console.mjs takes one command at a
time). Parties act through the API, as they must; the mediator acts only in the UI and through
the links its details give.

`make test` installs both (`npm ci`; `apt-get install chromium` when root); without them these
tests fail and say so rather than skipping. PARLEY_UPDATE_SCREENSHOTS=1 writes the pictures the
README shows into docs/ (a run leaves the tree clean otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from config import Settings
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from domain import search_attributes
from domain.authority import derive_key
from tests.api.test_campaigns import campaign_body, ok
from tests.conftest import (
    ADMIN_TOKEN,
    AS_THE_API,
    EVIDENCE_MAX_BYTES,
    TEMPORAL_BIN,
    free_port,
    serve,
    wait_for_port,
)
from worker import build_worker
from workflows.authority import FROM_THE_API_ONLY
from workflows.console import EVIDENCE_LINK_TTL, EvidenceLinks

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("console.mjs")
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core"
DOCS = ROOT / "docs"
STEP_TIMEOUT = 120.0  # seconds for one browser command; the first UI load is slow

# The README's queries (section "Mediators in the Temporal Web UI").
UNASSIGNED = 'WorkflowType="DisputeWorkflow" AND ParleyStage="mediation" AND ParleyMediator IS NULL'
CASES = 'WorkflowType="DisputeWorkflow"'
OVERDUE = 'WorkflowType="DisputeWorkflow" AND ParleyOverdue=true'

DISPUTED = 15_000  # the two deliverables of `campaign_body`: 10000 + 5000 (eur)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SERVER_TRACES = ("Traceback", 'File "', ".py", str(ROOT), "site-packages")


def require_browser() -> str:
    """Node, chromium and playwright-core, or a failure that says how to get them."""
    missing = []
    node = shutil.which("node")
    if node is None:
        missing.append("node (Node.js >= 20) on PATH")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (Debian package `chromium`: apt-get install chromium)")
    if not PLAYWRIGHT.is_dir():
        missing.append(f"{PLAYWRIGHT.relative_to(ROOT)} (run `npm ci` at the repository root)")
    if missing:
        pytest.fail(
            "the browser test needs " + "; ".join(missing) + ". `make test` installs them.",
            pytrace=False,
        )
    return node


class Browser:
    """The node script as a subprocess: one JSON command in, one JSON answer out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = bytearray()
        self._drain = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        while chunk := await self.proc.stderr.read(4096):
            self.stderr.extend(chunk)

    async def _answer(self, what: str) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), STEP_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"no answer to {what} from the browser in {STEP_TIMEOUT} s"
            ) from None
        if not line:
            await self.proc.wait()
            raise AssertionError(
                f"the browser exited ({self.proc.returncode}) during {what}:\n"
                + self.stderr.decode(errors="replace")
            )
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise AssertionError(
                f"the browser failed {what} at {answer.get('url')} "
                f"(screenshot {answer.get('screenshot')}):\n{answer['error']}"
            )
        return answer

    async def do(self, command: str, **args: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps({"do": command, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._answer(f"{command} {json.dumps(args)[:300]}")

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write(b'{"do": "quit"}\n')
                await asyncio.wait_for(self.proc.wait(), 30)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        await self._drain


@dataclass
class Party:
    id: str
    name: str
    client: httpx.AsyncClient


@dataclass
class Console:
    """The module's stack: Temporal with its UI, the API, a worker, the browser, the cast."""

    env: WorkflowEnvironment
    ui_url: str
    api_url: str
    browser: Browser
    brand: Party
    creator: Party
    mediator: Party
    other_mediator: Party
    shots: Path  # where screenshots go: docs/ when refreshing them, else a temporary dir

    def dispute(self, dispute_id: str) -> WorkflowHandle:
        return self.env.client.get_workflow_handle(f"dispute-{dispute_id}")

    async def console_token(self, mediator: Party) -> str:
        """What a mediator pastes beside its id in the UI, issued by the API."""
        issued = await ok(await mediator.client.post("/v1/mediators/me/console-token"))
        assert issued["mediator_id"] == mediator.id
        return issued["console_token"]

    def shot(self, name: str) -> str:
        return str(self.shots / name)


async def _webhook_receiver() -> AsyncIterator[str]:
    """Accepts the brand's webhooks, so notification deliveries (`deliver-*`) run and finish."""
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook() -> dict[str, bool]:
        return {"received": True}

    async for url in serve(receiver):
        yield url


@pytest.fixture(scope="module")
async def console(tmp_path_factory) -> AsyncIterator[Console]:
    node = require_browser()  # no point starting servers the test cannot look at
    tmp = tmp_path_factory.mktemp("console")
    database_url = f"sqlite:///{tmp / 'parley.db'}"
    upgrade(database_url)
    engine = make_engine(database_url)
    ui_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        port=free_port(),
        ui=True,
        ui_port=ui_port,
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        interceptors=AS_THE_API,
        dev_server_log_level="error",
        dev_server_extra_args=["--ui-disable-news-fetch"],
    )
    shots = DOCS if os.environ.get("PARLEY_UPDATE_SCREENSHOTS") else tmp
    clients: list[httpx.AsyncClient] = []
    browser = None
    try:
        await wait_for_port(ui_port)
        settings = Settings(
            data_dir=tmp / "data",
            database_url=database_url,
            admin_token=ADMIN_TOKEN,
            task_queue=f"console-{uuid.uuid4().hex}",
            payments="sandbox",
            evidence_max_bytes=EVIDENCE_MAX_BYTES,
            webhook_allow_http=True,
            webhook_allow_private=True,
        )
        app = create_app(settings, temporal=env.client)
        async for api_url in serve(app):
            # The worker signs the details' evidence links for this API's address.
            settings.public_api_url = api_url
            async with (
                build_worker(env.client, settings, make_sessionmaker(engine)),
                httpx.AsyncClient(
                    base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                ) as admin,
            ):
                async for hook_url in _webhook_receiver():

                    async def party(
                        role: str, name: str, api_url: str = api_url, **extra: Any
                    ) -> Party:
                        body = {"name": name, "role": role, "email": f"{role}@example.com"}
                        made = await ok(
                            await admin.post("/v1/parties", json={**body, **extra}), 201
                        )
                        client = httpx.AsyncClient(
                            base_url=api_url,
                            headers={"Authorization": f"Bearer {made['api_key']}"},
                            timeout=30,
                        )
                        clients.append(client)
                        return Party(made["id"], name, client)

                    proc = await asyncio.create_subprocess_exec(
                        node,
                        str(SCRIPT),
                        json.dumps(
                            {
                                "ui_url": f"http://127.0.0.1:{ui_port}",
                                "namespace": env.client.namespace,
                                "chromium": str(CHROMIUM),
                                "step_timeout_ms": int(STEP_TIMEOUT * 1000 / 2),
                                "failure_dir": str(tmp),
                            }
                        ),
                        cwd=ROOT,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE,
                    )
                    browser = Browser(proc)
                    await browser._answer("start")
                    yield Console(
                        env=env,
                        ui_url=f"http://127.0.0.1:{ui_port}",
                        api_url=api_url,
                        browser=browser,
                        brand=await party(
                            "brand", "Acme Sportswear", webhook_url=f"{hook_url}/hook"
                        ),
                        creator=await party(
                            "creator", "Mia Creates", stripe_account="acct_creator1"
                        ),
                        mediator=await party("mediator", "Dana Mediator"),
                        other_mediator=await party("mediator", "Omar Mediator"),
                        shots=shots,
                    )
    finally:
        if browser is not None:
            await browser.close()
        for client in clients:
            await client.aclose()
        await env.shutdown()
        await engine.dispose()


# --- the parties' side, through the API ------------------------------------------------------


async def funded_campaign(c: Console, **terms: str) -> str:
    body = campaign_body(c.creator.id, **terms)
    created = await ok(await c.brand.client.post("/v1/campaigns", json=body), 201)
    cid = created["id"]
    accept = {"contract_hash": created["contract_hash"]}
    await ok(await c.creator.client.post(f"/v1/campaigns/{cid}/accept", json=accept))
    await ok(await c.brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    return cid


async def filed(c: Console, cid: str) -> str:
    filing = {
        "reason": "post missing",
        "claim": {"release_to_creator": 0, "refund_to_brand": DISPUTED},
        "statement": "The reel was never posted on the agreed account.",
    }
    return (await ok(await c.brand.client.post(f"/v1/campaigns/{cid}/disputes", json=filing), 201))[
        "id"
    ]


async def in_mediation(c: Console, **terms: str) -> tuple[str, str]:
    """A campaign and its dispute, escalated to mediation by the parties through the API."""
    cid = await funded_campaign(c, **terms)
    did = await filed(c, cid)
    answer = {"statement": "It was posted, then the platform hid it for a day."}
    await ok(await c.creator.client.post(f"/v1/disputes/{did}/respond", json=answer))
    escalated = await ok(await c.creator.client.post(f"/v1/disputes/{did}/escalate"))
    assert escalated["stage"] == "mediation"
    return cid, did


async def update_names(handle: WorkflowHandle) -> list[str]:
    """The Updates the workflow accepted (a validator's refusal leaves no event)."""
    history = await handle.fetch_history()
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == accepted
    ]


def one_sentence(refusal: list[str]) -> str:
    """The dialog's refusal: one message, no stack trace, no server path (issue #12, 6)."""
    assert len(refusal) == 1, refusal
    (text,) = refusal
    assert not any(trace in text for trace in SERVER_TRACES), text
    return text


# --- the tests -------------------------------------------------------------------------------


async def test_a_mediator_takes_a_case_from_the_queue_to_a_ruling_in_the_ui(console):
    c = console
    cid = await funded_campaign(c)
    # The disputed work the details show: the creator's submission, with its metrics.
    submission = {
        "url": "https://instagram.com/p/reel1",
        "notes": "live",
        "metrics": {"views": 1200},
    }
    await ok(
        await c.creator.client.post(f"/v1/campaigns/{cid}/deliverables/0/submit", json=submission)
    )
    did = await filed(c, cid)
    answer = {"statement": "It was posted, then the platform hid it for a day."}
    await ok(await c.creator.client.post(f"/v1/disputes/{did}/respond", json=answer))
    upload = {"file": ("post.png", PNG, "image/png")}
    await ok(
        await c.creator.client.post(
            f"/v1/disputes/{did}/evidence", files=upload, data={"description": "the post, live"}
        ),
        201,
    )
    text = {"kind": "text", "text": "Our brief asked for the main account, not a story."}
    await ok(await c.brand.client.post(f"/v1/disputes/{did}/evidence", json=text), 201)
    await ok(await c.creator.client.post(f"/v1/disputes/{did}/escalate"))
    b = c.browser

    # 1. The unassigned queue (README) lists it.
    queue = await b.do("list", query=UNASSIGNED, expect=[f"dispute-{did}"])
    assert f"dispute-{did}" in queue["listed"] and f"campaign-{cid}" not in queue["listed"]
    await b.do("screenshot", path=c.shot("console-1-unassigned-queue.png"))

    # 2. The case in its details: names, money per currency, the statements, the work, evidence.
    case = await b.do(
        "details",
        id=f"dispute-{did}",
        expect=["mediation", "€150.00", "Acme Sportswear", "Mia Creates", "download", "read"],
    )
    for part in (
        "never posted",  # the claimant's statement
        "hid it for a day",  # the response
        "instagram.com/p/reel1",  # the disputed work
        "views 1,200",
        "assign_mediator",  # what to send next
    ):
        assert part in case["text"], (part, case["text"])
    opens = {link["text"]: link["href"] for link in case["links"]}
    assert opens["download"].startswith(f"{c.api_url}/v1/console/disputes/{did}/evidence/")
    await b.do("screenshot", path=c.shot("console-2-case-details.png"))

    # 3. The mediator assigns itself, with the console token the API issued it.
    token = await c.console_token(c.mediator)
    me = {"mediator_id": c.mediator.id, "console_token": token}
    assert await b.do(
        "update", id=f"dispute-{did}", update="assign_mediator", payload=json.dumps(me)
    ) == {"accepted": True}

    # 4. The evidence file opens from its link: the console's sign-in once, then the file.
    await b.do("details", id=f"dispute-{did}", expect=[f"Mediator: {c.mediator.id}"])
    opened = await b.do(
        "open",
        text="download",
        sign_in=me,
        sign_in_screenshot=c.shot("console-3-evidence-sign-in.png"),
    )
    assert opened["signed_in"], opened
    assert opened["download"]["sha256"] == hashlib.sha256(PNG).hexdigest(), opened
    assert opened["download"]["filename"] == "post.png", opened
    # The text item opens as its text, the session already signed in.
    read = await b.do("open", text="read")
    assert read["page"]["text"] == text["text"] and not read["signed_in"], read

    # 5. Evidence requested, then a proposal: an invalid split refused, a valid one made.
    note = {
        **me,
        "note": "Show the post's insights for the day it was hidden",
        "from_side": "creator",
    }
    accepted = {"accepted": True}
    assert (
        await b.do(
            "update", id=f"dispute-{did}", update="request_evidence", payload=json.dumps(note)
        )
        == accepted
    )
    before = await c.dispute(did).query("state", result_type=dict)
    bad = {**me, "release_to_creator": 1, "refund_to_brand": 1, "rationale": "x"}
    refused = await b.do(
        "update", id=f"dispute-{did}", update="propose_settlement", payload=json.dumps(bad)
    )
    assert f"must equal the disputed amount {DISPUTED} (got 1 + 1)" in one_sentence(
        refused["refused"]
    )
    assert await c.dispute(did).query("state", result_type=dict) == before
    split = {"release_to_creator": 6_000, "refund_to_brand": 9_000}
    proposal = {**me, **split, "rationale": "Posted late and on a story; most of the fee back."}
    assert (
        await b.do(
            "update", id=f"dispute-{did}", update="propose_settlement", payload=json.dumps(proposal)
        )
        == accepted
    )
    shown = await b.do(
        "details",
        id=f"dispute-{did}",
        expect=["awaiting_acceptance", "€60.00 to the creator / €90.00 to the brand", "insights"],
    )
    assert "proposal —" in shown["text"] and "most of the fee back" in shown["text"]
    await b.do("screenshot", path=c.shot("console-4-proposal.png"))

    # 6. A party rejects it through the API: arbitration; the mediator rules in the UI.
    rejected = await ok(await c.creator.client.post(f"/v1/disputes/{did}/proposal/reject"))
    assert rejected["stage"] == "arbitration"
    ruling = {**me, **split, "rationale": "The post ran a day late on a story, not the feed."}
    assert (
        await b.do("update", id=f"dispute-{did}", update="issue_ruling", payload=json.dumps(ruling))
        == accepted
    )
    ruled = await b.do("details", id=f"dispute-{did}", expect=["resolved", "Outcome (ruling)"])
    assert "€60.00 to the creator / €90.00 to the brand" in ruled["text"]
    await b.do("screenshot", path=c.shot("console-5-ruling.png"))

    # The ruling is the dispute's outcome, and the campaign executed it.
    dispute = await ok(await c.brand.client.get(f"/v1/disputes/{did}"))
    assert dispute["outcome"] == {**split, "by": "ruling"}
    assert dispute["mediator_id"] == c.mediator.id
    assert await update_names(c.dispute(did)) == [
        "filed",
        "respond",
        "add_evidence",
        "add_evidence",
        "escalate",
        "assign_mediator",
        "request_evidence",
        "propose_settlement",
        "reject_proposal",
        "issue_ruling",
    ]

    # The campaign's details name its parties and show its money per currency.
    campaign = await b.do(
        "details", id=f"campaign-{cid}", expect=["Acme Sportswear", "Mia Creates", "€150.00"]
    )
    assert f"Brand: Acme Sportswear ({c.brand.id})" in campaign["text"], campaign["text"]


async def test_b_a_party_update_typed_in_the_ui_is_refused_and_changes_nothing(console):
    c = console
    cid = await funded_campaign(c)
    did = await filed(c, cid)
    handle = c.dispute(did)
    before = await handle.query("state", result_type=dict)
    # The creator's `respond` accepting the claim, as anyone could type it (issue #12, 1).
    impersonation = {"actor_id": c.creator.id, "statement": "fine", "accept_claim": True}
    refused = await c.browser.do(
        "update",
        id=f"dispute-{did}",
        update="respond",
        payload=json.dumps(impersonation),
        screenshot=c.shot("console-6-party-update-refused.png"),
    )
    assert one_sentence(refused["refused"]) == FROM_THE_API_ONLY
    assert await handle.query("state", result_type=dict) == before
    assert "respond" not in await update_names(handle)
    campaign = await ok(await c.brand.client.get(f"/v1/campaigns/{cid}"))
    assert campaign["status"] == "disputed" and campaign["escrow"]["refunded_to_brand"] == 0


async def test_c_a_typod_or_another_mediators_id_is_refused(console):
    c = console
    _, did = await in_mediation(c)
    handle = c.dispute(did)
    token = await c.console_token(c.mediator)
    for someone in (c.mediator.id + "x", c.other_mediator.id):
        payload = json.dumps({"mediator_id": someone, "console_token": token})
        refused = await c.browser.do(
            "update", id=f"dispute-{did}", update="assign_mediator", payload=payload
        )
        sentence = one_sentence(refused["refused"])
        assert f"console_token is not valid for {someone}" in sentence, sentence
    state = await handle.query("state", result_type=dict)
    assert state["mediator_id"] is None and "assign_mediator" not in await update_names(handle)


async def test_d_the_overdue_queue_lists_an_overdue_dispute(console):
    c = console
    _, did = await in_mediation(c, mediation_window="PT2S")
    handle = c.dispute(did)
    deadline = asyncio.get_running_loop().time() + 60
    while not (await handle.query("state", result_type=dict))["mediator_overdue"]:
        assert asyncio.get_running_loop().time() < deadline, "the mediation window never passed"
        await asyncio.sleep(0.2)
    queue = await c.browser.do("list", query=OVERDUE, expect=[f"dispute-{did}"])
    assert all(wid.startswith("dispute-") for wid in queue["listed"]), queue
    await c.browser.do("screenshot", path=c.shot("console-7-overdue-queue.png"))
    shown = await c.browser.do("details", id=f"dispute-{did}", expect=["mediator overdue"])
    assert "overdue by" in shown["text"]


async def test_e_no_refusal_shows_a_traceback_or_a_server_path(console):
    c = console
    _, did = await in_mediation(c)
    token = await c.console_token(c.mediator)
    # JSON that does not fit the Update's model: the field is named, nothing else shown.
    missing = {"mediator_id": c.mediator.id, "console_token": token, "release_to_creator": 1}
    refused = await c.browser.do(
        "update", id=f"dispute-{did}", update="propose_settlement", payload=json.dumps(missing)
    )
    assert "refund_to_brand: Field required" in one_sentence(refused["refused"])
    # The admin's freeze of a campaign, sent from the UI: refused as a party's would be.
    cid = await funded_campaign(c)
    frozen = await c.browser.do(
        "update",
        id=f"campaign-{cid}",
        update="set_frozen",
        payload=json.dumps({"frozen": True, "reason": "typed in the UI"}),
    )
    assert one_sentence(frozen["refused"]) == FROM_THE_API_ONLY


async def test_f_the_mediators_cases_query_leaves_notification_deliveries_out(console):
    c = console
    _, did = await in_mediation(c)
    # The brand's webhook makes every event it hears of a `deliver-*` run: they exist...
    everything = await c.browser.do("list", query="", expect_prefix="deliver-")
    assert any(wid.startswith("deliver-") for wid in everything["listed"]), everything
    # ...and the mediators' cases query shows the disputes only.
    cases = await c.browser.do("list", query=CASES, expect=[f"dispute-{did}"])
    assert all(wid.startswith("dispute-") for wid in cases["listed"]), cases


async def test_g_evidence_links_are_signed_when_read_and_open_for_the_assigned_mediator_only(
    console,
):
    """The links themselves, without the browser: what each caller gets behind one."""
    c = console
    _, did = await in_mediation(c)
    text = {"kind": "text", "text": "The brief: <b>two</b> posts on the main account."}
    await ok(await c.brand.client.post(f"/v1/disputes/{did}/evidence", json=text), 201)
    await ok(
        await c.brand.client.post(f"/v1/disputes/{did}/evidence", json=text | {"text": "2"}), 201
    )
    assign = {"mediator_id": c.mediator.id}
    await ok(await c.mediator.client.post(f"/v1/disputes/{did}/assign", json=assign))

    # Signed when the UI reads the details, for EVIDENCE_LINK_TTL from then: a dispute idle for
    # days shows links as fresh as the page.
    before = time.time()
    details = (await c.dispute(did).query("__temporal_workflow_metadata")).current_details
    after = time.time()
    links = re.findall(r"\]\((http://[^)]+/v1/console/[^)]+)\)", details)
    assert len(links) == 2, details
    first, second = (httpx.URL(link) for link in links)
    ttl = EVIDENCE_LINK_TTL.total_seconds()
    expires = int(first.params["expires"])
    assert int(before + ttl) <= expires <= after + ttl

    async with httpx.AsyncClient(base_url=c.api_url, timeout=30) as browser:
        # No console token in this browser yet: the sign-in form, nothing of the item.
        form = await browser.get(str(first))
        assert form.status_code == 401 and form.headers["content-type"].startswith("text/html")
        assert 'name="console_token"' in form.text and "main account" not in form.text
        # A link altered, or one item's signature on another: refused for everyone.
        forged = first.copy_set_param("signature", "0" * 64)
        assert (await browser.get(str(forged))).status_code == 403
        swapped = second.copy_set_param("signature", first.params["signature"])
        assert (await browser.get(str(swapped))).status_code == 403
        odd = first.copy_set_param("signature", "é" * 64)  # a refusal, not a 500
        assert (await browser.get(str(odd))).status_code == 403
        # Expired: signed an hour ago.
        old = EvidenceLinks(derive_key(ADMIN_TOKEN), c.api_url, clock=lambda: time.time() - 3600)
        expired = await browser.get(old(did, first.path.rsplit("/", 1)[1]))
        assert expired.status_code == 403 and "expired" in expired.json()["detail"]

        # Another mediator's token: signed in, but the case is not theirs (SPEC §1).
        other = {
            "mediator_id": c.other_mediator.id,
            "console_token": await c.console_token(c.other_mediator),
            "next": first.raw_path.decode(),
        }
        signed_in = await browser.post("/v1/console/session", data=other)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == other["next"]
        refused = await browser.get(str(first))
        assert refused.status_code == 403 and "assigned mediator only" in refused.json()["detail"]
        # A token is its own mediator's only; `next` never leaves the console.
        token = await c.console_token(c.mediator)
        wrong = {**other, "mediator_id": c.mediator.id}
        assert (await browser.post("/v1/console/session", data=wrong)).status_code == 403
        odd_token = {**wrong, "console_token": "²." + "0" * 64}
        assert (await browser.post("/v1/console/session", data=odd_token)).status_code == 403
        mine = {"mediator_id": c.mediator.id, "console_token": token}
        offsite = await browser.post(
            "/v1/console/session", data={**mine, "next": "https://evil.example/x"}
        )
        assert offsite.headers["location"] == "/v1/console"

        # The assigned mediator: the text itself, as plain text that nothing renders.
        shown = await browser.get(str(first))
        assert shown.status_code == 200, shown.text
        assert shown.text == text["text"]
        assert shown.headers["content-type"].startswith("text/plain")
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert shown.headers["referrer-policy"] == "no-referrer"
