"""Dispute path benchmark: a dispute from filing to settlement, through the HTTP API.

    python -m bench.dispute_path [--n 10] [--concurrency 5]

The same embedded stack as bench/campaign_lifecycle.py (its `embedded_stack`: the Temporal dev
server with Parley's search attributes on a free loopback port, SQLite in a temporary
directory, the worker and the API under uvicorn in this process). One brand, one creator and
one mediator, created through the admin API. Then N dispute paths, at most `--concurrency` at
a time, each on its own funded two-deliverable campaign:

    create → accept → fund → file (both deliverables, everything back to the brand) →
    20 evidence items (10 small files, 10 links; brand and creator in turn) → respond →
    10 offers (creator and brand in turn, none accepted) → escalate → assign (the mediator
    assigns itself) → request-evidence → propose → reject (creator) → ruling →
    poll `GET /v1/campaigns/{id}` until `dispute_id` is null (the campaign has settled)

and the settled escrow is checked. One unmeasured warm-up path goes first. Prints p50/p99 per
action, paths/s, and the workflow-history events of every dispute workflow and every campaign
workflow (fetch_history once they have closed: min/mean/max). Bounded: `--n` ≤ 1000,
`--timeout` for the whole phase, `WAIT_LIMIT` per settlement; the stack is torn down on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.campaign_lifecycle import (
    AMOUNTS,
    TEMPORAL_BIN,
    TERMS,
    WAIT_LIMIT,
    BenchError,
    Parties,
    Run,
    api_funded_campaign,
    api_post,
    banner,
    create_parties,
    drive,
    embedded_stack,
    history_events,
    party_client,
    percentile,
)

# Nothing in the dispute runs out while it is driven: every dispute window is ten minutes.
# clearing_period and review_period PT1S (TERMS) close the campaign soon after settlement.
DISPUTE_TERMS = {
    **TERMS,
    **dict.fromkeys(
        (
            "response_window",
            "negotiation_window",
            "mediation_window",
            "proposal_window",
            "arbitration_window",
        ),
        "PT10M",
    ),
}
BUDGET = sum(AMOUNTS)
EVIDENCE_ITEMS = 20  # half files, half links
OFFERS = 10  # creator and brand in turn
FILE_BYTES = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PROPOSAL = (9_000, 6_000)
RULING = (7_500, 7_500)
ACTIONS = (
    "create",
    "accept",
    "fund",
    "file",
    "evidence (file)",
    "evidence (link)",
    "respond",
    "offer",
    "escalate",
    "assign",
    "request-evidence",
    "propose",
    "reject",
    "ruling",
    "read",
    "until settled",
)


@dataclass
class DisputeRun(Run):
    disputes: dict[str, str] = field(default_factory=dict)  # campaign id → dispute id


@dataclass
class Cast(Parties):
    mediator_id: str
    mediator: httpx.AsyncClient


def offer_split(k: int) -> tuple[int, int]:
    """Offer k: the creator (k even) concedes 500 a round from 13 000, the brand (k odd)
    raises 500 a round from 2 000; each sums to the disputed amount."""
    release = 13_000 - 500 * k if k % 2 == 0 else 2_000 + 500 * k
    return release, BUDGET - release


def check_settled(state: dict[str, Any]) -> None:
    escrow = state["escrow"]
    parts = ("held", "released_to_creator", "agency_commission", "platform_fee")
    fee = RULING[0] * state["terms"]["platform_fee_bps"] // 10_000
    expected = {
        "funded": BUDGET,
        "held": 0,
        "released_to_creator": RULING[0] - fee,
        "platform_fee": fee,
        "refunded_to_brand": RULING[1],
    }
    exact = sum(escrow[k] for k in parts) + escrow["refunded_to_brand"] == escrow["funded"]
    if not exact or any(escrow[k] != v for k, v in expected.items()):
        raise BenchError(f"{state['id']} settled with an unexpected escrow {escrow}")
    if {d["status"] for d in state["deliverables"]} != {"settled"}:
        raise BenchError(f"{state['id']} settled, but deliverables {state['deliverables']}")


async def until_settled(
    run: Run, read: Callable[[], Awaitable[dict[str, Any]]], poll: float
) -> dict[str, Any]:
    """From the ruling's answer to the first read without the dispute (settlement done)."""
    started = time.perf_counter()
    while True:
        state = await run.timed("read", read())
        if state["dispute_id"] is None:
            run.latencies["until settled"].append(time.perf_counter() - started)
            check_settled(state)
            return state
        if time.perf_counter() - started > WAIT_LIMIT:
            raise BenchError(f"{state['id']} not settled after {WAIT_LIMIT:.0f} s: {state}")
        await asyncio.sleep(poll)


async def dispute_path(run: DisputeRun, cast: Cast, poll: float) -> str:
    brand, creator, mediator = cast.brand, cast.creator, cast.mediator
    cid = await api_funded_campaign(run, cast, DISPUTE_TERMS)
    filing = {
        "reason": "not delivered",
        "deliverables": list(range(len(AMOUNTS))),
        "claim": {"release_to_creator": 0, "refund_to_brand": BUDGET},
        "statement": "Nothing was posted by the due date.",
    }
    filed = await api_post(run, brand, "file", f"/v1/campaigns/{cid}/disputes", filing, 201)
    did = filed["id"]
    run.disputes[cid] = did
    path = f"/v1/disputes/{did}"

    for i in range(EVIDENCE_ITEMS):
        party = creator if (i // 2) % 2 == 0 else brand
        if i % 2 == 0:  # a small file, its content unique (evidence is content-addressed)
            data = PNG_SIGNATURE + f"{did}:{i}".encode().ljust(FILE_BYTES - 8, b"\0")
            upload = {"file": (f"shot-{i}.png", data, "image/png")}
            await api_post(
                run,
                party,
                "evidence (file)",
                f"{path}/evidence",
                status=201,
                files=upload,
                data={"description": f"screenshot {i}"},
            )
        else:
            link = {"kind": "link", "url": f"https://instagram.com/p/{did}/{i}"}
            await api_post(run, party, "evidence (link)", f"{path}/evidence", link, 201)

    await api_post(run, creator, "respond", f"{path}/respond", {"statement": "I posted #0"})
    for k in range(OFFERS):
        release, refund = offer_split(k)
        offer = {"release_to_creator": release, "refund_to_brand": refund}
        await api_post(run, creator if k % 2 == 0 else brand, "offer", f"{path}/offers", offer, 201)
    await api_post(run, brand, "escalate", f"{path}/escalate")
    await api_post(run, mediator, "assign", f"{path}/assign", {"mediator_id": cast.mediator_id})
    ask = {"note": "Show the posts' schedule", "from_side": "creator"}
    await api_post(run, mediator, "request-evidence", f"{path}/request-evidence", ask)
    proposal = {
        "release_to_creator": PROPOSAL[0],
        "refund_to_brand": PROPOSAL[1],
        "rationale": "one post of two",
    }
    await api_post(run, mediator, "propose", f"{path}/proposal", proposal)
    await api_post(run, creator, "reject", f"{path}/proposal/reject")
    ruling = {
        "release_to_creator": RULING[0],
        "refund_to_brand": RULING[1],
        "rationale": "half the work is worth half",
    }
    ruled = await api_post(run, mediator, "ruling", f"{path}/ruling", ruling)
    outcome = {"release_to_creator": RULING[0], "refund_to_brand": RULING[1], "by": "ruling"}
    if ruled["outcome"] != outcome:
        raise BenchError(f"{did}: unexpected outcome {ruled['outcome']}")

    async def read() -> dict[str, Any]:
        response = await brand.get(f"/v1/campaigns/{cid}")
        if response.status_code != 200:
            raise BenchError(f"GET campaign {cid}: {response.status_code} {response.text[:500]}")
        return response.json()

    await until_settled(run, read, poll)
    return cid


def report(run: DisputeRun, histories: dict[str, list[int]]) -> str:
    done = len(run.lifecycles)
    lines = ["", "throughput"]
    lines.append(
        f"  {'done':>5} {'failed':>6} {'wall s':>7} {'paths/s':>8} {'path s p50':>11} "
        f"{'p99':>6} {'process CPU':>12}"
    )
    p50 = percentile(run.lifecycles, 50) if done else math.nan
    p99 = percentile(run.lifecycles, 99) if done else math.nan
    lines.append(
        f"  {done:>5} {len(run.failures):>6} {run.wall:>7.2f} "
        f"{done / run.wall if run.wall else 0:>8.2f} {p50:>11.2f} {p99:>6.2f} "
        f"{run.cpu / run.wall if run.wall else 0:>11.0%}"
    )
    lines.append("  (process CPU: worker + API + client, all in this process; 100% = one core)")
    lines += ["", "latency per action, ms"]
    lines.append(f"  {'action':<18} {'samples':>7} {'p50':>8} {'p99':>8}")
    for action in ACTIONS:
        if samples := run.latencies.get(action):
            lines.append(
                f"  {action:<18} {len(samples):>7} {percentile(samples, 50) * 1000:>8.1f} "
                f"{percentile(samples, 99) * 1000:>8.1f}"
            )
    lines += ["", "workflow-history events (fetch_history once closed)"]
    for name, counts in histories.items():
        if counts:
            lines.append(
                f"  {name:<8} {len(counts)} workflows: min {min(counts)}  "
                f"mean {statistics.mean(counts):.1f}  max {max(counts)}"
            )
    for failure in run.failures[:5]:
        lines.append(f"  FAILED: {failure}")
    return "\n".join(lines)


async def bench(args) -> int:
    banner("bench.dispute_path")
    print(
        f"n={args.n} · concurrency {args.concurrency} · 2 deliverables, {BUDGET} disputed · "
        f"{EVIDENCE_ITEMS} evidence ({EVIDENCE_ITEMS // 2} files of {FILE_BYTES} B, "
        f"{EVIDENCE_ITEMS // 2} links) · {OFFERS} offers · poll every {args.poll * 1000:.0f} ms"
        " · Idempotency-Key on"
    )
    started = time.perf_counter()
    async with embedded_stack() as stack:
        print(f"stack up in {time.perf_counter() - started:.1f} s: API {stack.base_url}")
        made = await create_parties(
            stack,
            {"brand": {}, "creator": {"stripe_account": "acct_bench"}, "mediator": {}},
        )
        async with (
            party_client(stack, made["brand"], args.concurrency) as brand,
            party_client(stack, made["creator"], args.concurrency) as creator,
            party_client(stack, made["mediator"], args.concurrency) as mediator,
        ):
            cast = Cast(
                made["brand"]["id"],
                made["creator"]["id"],
                brand,
                creator,
                made["mediator"]["id"],
                mediator,
            )
            warmup = DisputeRun("warm-up")
            await drive(warmup, lambda: dispute_path(warmup, cast, args.poll), 1, 1, args.timeout)
            if warmup.failures:
                raise BenchError(f"warm-up failed: {warmup.failures[0]}")
            run = DisputeRun("api")
            print(f"running {args.n} dispute paths ...", flush=True)
            await drive(
                run,
                lambda: dispute_path(run, cast, args.poll),
                args.n,
                args.concurrency,
                args.timeout,
            )
            # Only the paths that completed: a failed one's workflows may never close.
            client, n = stack.client, len(run.campaign_ids)
            dispute_ids = [run.disputes[cid] for cid in run.campaign_ids]
            histories = {
                "dispute": await history_events(client, dispute_ids, "dispute", n),
                "campaign": await history_events(client, run.campaign_ids, "campaign", n),
            }
    print(report(run, histories))
    return 1 if run.failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="dispute paths (default 10)")
    parser.add_argument("--concurrency", type=int, default=5, help="paths at once (default 5)")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between reads")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the run at most")
    args = parser.parse_args()
    if not 1 <= args.n <= 1_000 or not 1 <= args.concurrency <= 100:
        parser.error("--n must be within 1..1000 and --concurrency within 1..100")
    if not 0.01 <= args.poll <= 5 or not 1 <= args.timeout <= 3_600:
        parser.error("--poll must be within 0.01..5 s and --timeout within 1..3600 s")
    if not TEMPORAL_BIN.exists():
        parser.error(f"{TEMPORAL_BIN} not found: run `make` once to install temporal-bin")
    try:
        sys.exit(asyncio.run(bench(args)))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
