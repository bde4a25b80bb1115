"""The mediator console is the Temporal UI (SPEC §5), tested in a real browser.

playwright-core (npm, pinned in package.json) drives Debian's chromium through the UI of a dev
server of its own: the dispute is found with the ParleyStage filter, `propose_settlement` goes
through "Send an Update", an invalid split shows the validator's message and changes nothing,
a valid one moves the dispute to awaiting_acceptance. The screenshot lands in docs/.

`make test` installs both (`npm ci`; `apt-get install chromium` when root); without them this
test fails and says so rather than skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain import search_attributes
from domain.authority import console_token, derive_key
from tests.conftest import ADMIN_TOKEN, AS_THE_API, TEMPORAL_BIN, free_port, wait_for_port
from tests.workflows.test_dispute import MEDIATOR, file, funded, to_mediation
from worker import build_worker
from workflows.dispute import DisputeWorkflow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("mediator_console.mjs")
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = ROOT / "node_modules" / "playwright-core"
# The committed picture in docs/ is refreshed only on request, so a test run leaves the tree
# clean: PARLEY_UPDATE_SCREENSHOTS=1 make test PYTEST_ARGS=tests/ui
DOCS_SCREENSHOT = ROOT / "docs" / "mediator-console.png"
STEP_TIMEOUT = 120.0  # seconds for each step the browser reports; the first UI load is slow

UPDATE = "propose_settlement"
DISPUTED = 15_000  # the two deliverables of `funded`: 10000 + 5000
# What a mediator pastes in the UI: its id and the console token the API issued it.
TOKEN = console_token(derive_key(ADMIN_TOKEN), MEDIATOR, int(time.time()) + 3600)
INVALID = {
    "mediator_id": MEDIATOR,
    "console_token": TOKEN,
    "release_to_creator": 1,
    "refund_to_brand": 1,
}
VALID = {
    "mediator_id": MEDIATOR,
    "console_token": TOKEN,
    "release_to_creator": 6_000,
    "refund_to_brand": 9_000,
    "rationale": "split",
}


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
            "the browser test needs " + "; ".join(missing) + ". `.ci/run` installs them.",
            pytrace=False,
        )
    return node


@dataclass
class UiStack:
    env: WorkflowEnvironment
    ui_url: str
    task_queue: str


@pytest.fixture
def node() -> str:
    return require_browser()


@pytest.fixture
async def ui_stack(node, settings, sessionmaker, task_queue) -> AsyncIterator[UiStack]:
    """A dev server of its own, with the Web UI (the session one runs headless), and a worker.
    Checks for the browser first: no point starting a server the test cannot look at."""
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
    try:
        await wait_for_port(ui_port)
        async with build_worker(env.client, settings, sessionmaker, task_queue):
            yield UiStack(env=env, ui_url=f"http://127.0.0.1:{ui_port}", task_queue=task_queue)
    finally:
        await env.shutdown()


class Browser:
    """The node script as a subprocess: JSON lines out, one "go" line in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = bytearray()
        self.lines: list[str] = []
        self._drain = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        while chunk := await self.proc.stderr.read(4096):
            self.stderr.extend(chunk)

    def transcript(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr ---\n" + self.stderr.decode(errors="replace")

    async def expect(self, step: str) -> dict:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), STEP_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"no {step!r} from the browser in {STEP_TIMEOUT} s") from None
        if not line:
            await self.proc.wait()
            raise AssertionError(
                f"the browser exited ({self.proc.returncode}) before {step!r}:\n"
                + self.transcript()
            )
        self.lines.append(line.decode().rstrip())
        message = json.loads(line)
        if message["step"] == "error":
            raise AssertionError(
                f"the browser failed before {step!r} at {message.get('url')} "
                f"(screenshot {message.get('screenshot')}):\n{message['message']}"
            )
        assert message["step"] == step, self.transcript()
        return message

    async def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        finally:
            await self._drain

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._drain


async def update_names(handle: WorkflowHandle, event_type: EventType.ValueType) -> list[str]:
    history = await handle.fetch_history()
    names = []
    for event in history.events:
        if event.event_type == event_type:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            names.append(request.input.name)
    return names


# One run is enough: the database under the worker is not what this test is about.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_mediator_proposes_a_settlement_from_the_temporal_ui(node, ui_stack, tmp_path):
    env = ui_stack.env
    campaign = await funded(env, ui_stack.task_queue)
    dispute = await file(env, campaign)
    await to_mediation(dispute)
    before = await dispute.query(DisputeWorkflow.state)
    assert (before["stage"], before["mediator_id"]) == ("mediation", MEDIATOR)
    assert before["disputed_amount"] == DISPUTED and before["proposal"] is None

    update_docs = os.environ.get("PARLEY_UPDATE_SCREENSHOTS")
    screenshot = DOCS_SCREENSHOT if update_docs else tmp_path / "mediator-console.png"
    config = {
        "ui_url": ui_stack.ui_url,
        "namespace": env.client.namespace,
        "workflow_id": dispute.id,
        "update": UPDATE,
        "stage_query": 'ParleyStage="mediation"',
        "next_stage_query": 'ParleyStage="awaiting_acceptance"',
        "invalid_payload": json.dumps(INVALID),
        "valid_payload": json.dumps(VALID),
        # The case as the details show it (issue #12): money per currency, the labelled proposal.
        "details_expect": [
            "awaiting_acceptance",
            "Disputed: €150.00",
            "proposal",
            "€60.00 to the creator / €90.00 to the brand",
        ],
        "chromium": str(CHROMIUM),
        "screenshot": str(screenshot),
        "failure_screenshot": str(tmp_path / "failure.png"),
        "step_timeout_ms": int(STEP_TIMEOUT * 1000 / 2),
    }
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        json.dumps(config),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    browser = Browser(proc)
    try:
        # The ParleyStage filter narrows the list to the dispute: its campaign drops out.
        found = await browser.expect("found")
        assert campaign.id in found["unfiltered"], found
        assert found["listed"] == [dispute.id], found

        # The invalid split: the validator's message, and nothing changed.
        refused = await browser.expect("refused")
        assert refused["dialog_open"], refused
        assert any(
            f"must equal the disputed amount {DISPUTED} (got 1 + 1)" in e for e in refused["errors"]
        ), refused
        assert await dispute.query(DisputeWorkflow.state) == before
        await browser.send("go")

        # The valid split: the dispute waits for the parties' acceptance.
        accepted = await browser.expect("accepted")
        assert accepted["listed"] == [dispute.id], accepted
        assert f"Mediator: {MEDIATOR}" in accepted["details"], accepted
        assert await browser.finish() == 0, browser.transcript()
    finally:
        await browser.kill()

    after = await dispute.query(DisputeWorkflow.state)
    assert after["stage"] == "awaiting_acceptance"
    assert after["proposal"]["mediator_id"] == MEDIATOR
    assert after["proposal"]["split"] == {"release_to_creator": 6_000, "refund_to_brand": 9_000}
    assert after["proposal"]["rationale"] == "split"
    # A validator's refusal leaves no event: the history holds the valid Update only.
    accepted_updates = await update_names(
        dispute, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    assert accepted_updates.count(UPDATE) == 1, accepted_updates
    assert (await dispute.describe()).typed_search_attributes.get(
        search_attributes.STAGE
    ) == "awaiting_acceptance"
    assert screenshot.stat().st_size > 10_000
