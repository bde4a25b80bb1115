"""Scale: N open campaigns through the API, then a burst of deadlines (issue #13).

    python -m bench.scale [--campaigns 1000] [--clients 8] [--spread 60] [--workers 1]

On its own embedded stack (Temporal dev server, the API in this process, the worker as
`--workers` separate processes, SQLite): `--clients` concurrent clients create `--campaigns`
one-deliverable campaigns, each with an acceptance window that ends inside one burst of
`--spread` seconds that starts once every campaign is open (plus `--lead` seconds). Nobody
accepts, so every campaign's acceptance reminder fires and then its expiry: the deadline
burst of a brand launching many creators at once. Prints the creation rate, the resident
memory of the worker(s), the Temporal server and this process (API + clients) with all
campaigns open, each deadline's lateness (the `campaign.expired` timeline entry's time
minus `accept_by`) as p50/p90/p99/max, the fraction that fired within `--patience`
seconds after the burst, and how the API answered a probe client meanwhile; then, for the
latest 1 %, where their lateness went (`lateness_parts`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine
from sqlmodel import Session, select
from temporalio.client import Client

from bench.campaign_lifecycle import (
    BenchError,
    Stack,
    WorkerProcess,
    banner,
    create_parties,
    embedded_stack,
    party_client,
    percentile,
    rss_mib,
)
from db.models import CampaignRecord, TimelineEvent

ROOT = Path(__file__).resolve().parent.parent


def temporal_server_pid(port: str) -> int | None:
    """The dev server this bench started: the `temporal` process listening on `port`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"temporal") and port.encode() in argv:
            return int(entry.name)
    return None


async def create_all(stack: Stack, args, burst_at: datetime) -> tuple[list[str], float, int]:
    """The campaigns, created by `args.clients` clients. `args.deadlines` of them, spread
    evenly through the creation order, get an acceptance window that ends at their slot in
    the burst; the others a week's window, so they stay open and idle throughout. Answers
    the ids of those in the burst, the creation rate and how many could not be given their
    slot (created too late for it: their window is 60 s instead)."""
    made = await create_parties(stack, {"brand": {}, "creator": {"stripe_account": "acct_scale"}})
    creator_id = made["creator"]["id"]
    due = min(args.deadlines or args.campaigns, args.campaigns)
    every = args.campaigns / due
    in_burst = {int(k * every): k for k in range(due)}  # creation order → burst order
    ids: list[str] = []
    created = 0
    late = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(args.campaigns):
        queue.put_nowait(n)

    async def client_loop(brand: httpx.AsyncClient) -> None:
        nonlocal late, created
        while not queue.empty():
            n = queue.get_nowait()
            if n in in_burst:
                slot = burst_at + timedelta(seconds=args.spread * in_burst[n] / due)
                window = int((slot - datetime.now(UTC)).total_seconds())
                if window < 60:
                    late, window = late + 1, 60
            else:
                window = 7 * 24 * 3600
            body = {
                "title": f"Scale {n}",
                "creator_id": creator_id,
                "currency": "eur",
                "deliverables": [{"title": "Post", "amount": 10_000}],
                "terms": {"acceptance_window": f"PT{window}S"},
            }
            for _ in range(30):
                response = await brand.post(
                    "/v1/campaigns", json=body, headers={"Idempotency-Key": f"scale-{n}"}
                )
                if response.status_code not in (429, 503):
                    break
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            if response.status_code != 201:
                raise BenchError(f"create {n}: {response.status_code} {response.text[:300]}")
            created += 1
            if n in in_burst:
                ids.append(response.json()["id"])
            if created % 500 == 0:
                print(f"  {created} open", flush=True)

    started = time.perf_counter()
    async with party_client(stack, made["brand"], args.clients) as brand:
        await asyncio.gather(*(client_loop(brand) for _ in range(args.clients)))
    return ids, created / (time.perf_counter() - started), late


def fired(db_url: str, ids: list[str]) -> tuple[dict[str, float], int]:
    """Each expired campaign's lateness in seconds (timeline time − accept_by), and how
    many acceptance reminders were recorded."""
    engine = create_engine(db_url)
    with Session(engine) as session:
        deadlines = {
            r.id: datetime.fromisoformat(r.snapshot["accept_by"].replace("Z", "+00:00"))
            for r in session.exec(select(CampaignRecord).where(CampaignRecord.id.in_(ids))).all()
            if r.snapshot.get("accept_by")
        }
        events = session.exec(
            select(TimelineEvent).where(
                TimelineEvent.kind.in_(("campaign.expired", "reminder.acceptance")),
                TimelineEvent.campaign_id.in_(ids),
            )
        ).all()
    engine.dispose()
    lateness, reminders = {}, 0
    for event in events:
        if event.kind == "campaign.expired" and event.campaign_id in deadlines:
            at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
            lateness[event.campaign_id] = (at - deadlines[event.campaign_id]).total_seconds()
        else:
            reminders += 1
    return {cid: lateness[cid] for cid in ids if cid in lateness}, reminders


async def lateness_parts(client: Client, campaign_id: str) -> tuple[float, float, float]:
    """Where one expiry's lateness went, from its workflow history: the workflow task that
    armed the timer (Temporal starts a timer when that task completes, so its duration adds
    to the deadline), the server firing the timer after it was due, and the task the fired
    timer scheduled waiting for a worker to start it."""
    armed_by = fire_late = waited = 0.0
    task_scheduled = task_started = datetime.now(UTC)
    timers: dict[int, tuple[datetime, float]] = {}  # started event → (due, arming task's run)
    just_fired = False
    handle = client.get_workflow_handle(f"campaign-{campaign_id}")
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime(UTC)
        if event.HasField("workflow_task_scheduled_event_attributes"):
            task_scheduled = at
        elif event.HasField("workflow_task_started_event_attributes"):
            task_started = at
            if just_fired:
                waited, just_fired = (at - task_scheduled).total_seconds(), False
        elif event.HasField("timer_started_event_attributes"):
            timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            timers[event.event_id] = (at + timeout, (at - task_started).total_seconds())
        elif event.HasField("timer_fired_event_attributes"):
            due, armed_by = timers[event.timer_fired_event_attributes.started_event_id]
            fire_late, just_fired = (at - due).total_seconds(), True
    return armed_by, fire_late, waited


async def probe(stack: Stack, admin_token: str, stop: asyncio.Event) -> Counter:
    """One read a second through the API while the burst runs: its answers by status (and
    'slow' over 5 s)."""
    seen: Counter = Counter()
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=30) as admin:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await admin.get("/v1/campaigns", params={"limit": 1})
                seen[str(response.status_code)] += 1
            except httpx.HTTPError as err:
                seen[type(err).__name__] += 1
            if time.perf_counter() - started > 5:
                seen["slow"] += 1
            try:
                await asyncio.wait_for(stop.wait(), 1)
            except TimeoutError:
                pass
    return seen


async def scale(args) -> int:
    banner("bench.scale")
    print(
        f"{args.campaigns} campaigns · {args.clients} clients · burst of {args.spread} s, "
        f"{args.lead} s after the last one opens · {args.workers} worker process(es) · "
        f"{'PostgreSQL' if (args.database_url or '').startswith('postgres') else 'SQLite'}"
    )
    async with embedded_stack(worker=False, database_url=args.database_url) as stack:
        log = Path(stack.settings.data_dir).parent / "workers.log"
        workers = [WorkerProcess(stack, log) for _ in range(args.workers)]
        for worker in workers:
            worker.start()
        try:
            # The burst starts `lead` s after the last campaign is expected to open (at the
            # pessimistic `--rate` campaigns/s).
            opening = args.campaigns / args.rate
            burst_at = datetime.now(UTC) + timedelta(seconds=opening + args.lead)
            print(f"creating (burst at {burst_at:%H:%M:%S} UTC) ...", flush=True)
            ids, rate, late = await create_all(stack, args, burst_at)
            port = stack.client.service_client.config.target_host.rsplit(":", 1)[1]
            server = temporal_server_pid(port)
            memory = {
                "worker(s)": sum(w.rss_mib() for w in workers),
                "temporal server": rss_mib(server) if server else float("nan"),
                "API + clients": rss_mib(os.getpid()),
            }
            print(
                f"created {args.campaigns} in {args.campaigns / rate:.0f} s: "
                f"{rate:.1f} campaigns/s ({late} too late for their slot)"
            )
            print("RSS with all open: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in memory.items()))
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(stack, stack.settings.admin_token, stop))
            end = burst_at + timedelta(seconds=args.spread + args.patience)
            while datetime.now(UTC) < end:
                lateness, _ = fired(stack.settings.db_url, ids)
                if len(lateness) == len(ids):
                    break
                await asyncio.sleep(2)
            stop.set()
            answers = await probing
            lateness, reminders = fired(stack.settings.db_url, ids)
            peak = {"worker(s)": sum(w.rss_mib() for w in workers)}
            latest = sorted(lateness, key=lateness.__getitem__)[-max(1, len(lateness) // 100) :]
            parts = [await lateness_parts(stack.client, cid) for cid in latest]
        finally:
            for worker in workers:
                worker.stop()
    values = sorted(lateness.values())
    share = len(values) / len(ids) if ids else 0
    print(
        f"deadlines fired: {len(values)}/{len(ids)} ({share:.1%}) within {args.patience} s "
        f"after the burst; reminders recorded: {reminders}"
    )
    if values:
        print(
            "lateness (s): "
            + " · ".join(f"p{p} {percentile(values, p):.2f}" for p in (50, 90, 99))
            + f" · max {values[-1]:.2f}"
        )
        print(
            f"the latest {len(latest)} (p99 and above), mean seconds: "
            + " · ".join(
                f"{name} {sum(p[i] for p in parts) / len(parts):.2f}"
                for i, name in enumerate(
                    ("task arming the timer", "server firing it", "fired task waiting")
                )
            )
        )
    print(f"worker RSS after the burst: {peak['worker(s)']:.0f} MiB")
    print("API probe during the burst: " + ", ".join(f"{k}: {v}" for k, v in answers.items()))
    return 0 if share == 1 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients")
    parser.add_argument(
        "--deadlines", type=int, default=0, help="how many fall in the burst (default: all)"
    )
    parser.add_argument("--spread", type=int, default=60, help="seconds the burst lasts")
    parser.add_argument("--lead", type=int, default=60, help="seconds from open to burst")
    parser.add_argument(
        "--rate", type=float, default=5, help="campaigns/s assumed when placing the burst"
    )
    parser.add_argument("--patience", type=int, default=600, help="seconds after the burst")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--database-url",
        help="an empty database for Parley's tables (e.g. PostgreSQL, as deployed); "
        "default: a new SQLite file",
    )
    sys.exit(asyncio.run(scale(parser.parse_args())))


if __name__ == "__main__":
    main()
