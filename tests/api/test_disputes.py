"""Disputes through the HTTP API on the dev server: filing to settlement, evidence, case file."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from domain.contract import canonical_json
from tests.api.test_campaigns import ZERO, create_and_fund, ok, until
from tests.api.test_parties import assert_problem
from tests.conftest import EVIDENCE_MAX_BYTES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture
async def cast(make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    mediators = [await make_party("mediator"), await make_party("mediator")]
    stranger = await make_party("creator")
    return brand, creator, mediators, stranger


async def file(brand, cid, claim=(0, 15_000), **extra) -> dict:
    body = {
        "reason": "not delivered",
        "claim": {"release_to_creator": claim[0], "refund_to_brand": claim[1]},
        "statement": "Nothing was posted by the due date.",
        **extra,
    }
    return await ok(await brand.client.post(f"/v1/campaigns/{cid}/disputes", json=body), 201)


async def test_dispute_from_filing_to_ruling_and_settlement(api, cast):
    brand, creator, (m1, m2), stranger = cast
    cid = (await create_and_fund(brand, creator))["id"]
    assert_problem(
        await brand.client.post(
            f"/v1/campaigns/{cid}/disputes",
            json={
                "reason": "x",
                "claim": {"release_to_creator": 1, "refund_to_brand": 1},
                "statement": "s",
            },
        ),
        422,
        "validation_error",
    )
    dispute = await file(brand, cid)
    did = dispute["id"]
    assert dispute["stage"] == "awaiting_response" and dispute["disputed_amount"] == 15_000
    assert (await ok(await brand.client.get(f"/v1/campaigns/{cid}")))["status"] == "disputed"
    assert_problem(await stranger.client.get(f"/v1/disputes/{did}"), 404, "not_found")
    assert_problem(await m1.client.get(f"/v1/disputes/{did}"), 404, "not_found")  # not mediated yet
    assert_problem(
        await creator.client.post(
            f"/v1/campaigns/{cid}/disputes",
            json={
                "reason": "x",
                "claim": {"release_to_creator": 15_000, "refund_to_brand": 0},
                "statement": "s",
            },
        ),
        409,
        "dispute_open",
    )

    await ok(
        await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": "I posted"})
    )
    offered = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/offers",
            json={"release_to_creator": 9_000, "refund_to_brand": 6_000},
        ),
        201,
    )
    # The offer made, flat as posted (issue #14), with its address.
    assert (offered["status"], offered["release_to_creator"]) == ("open", 9_000)
    assert offered["by"] == creator.id
    assert_problem(
        await brand.client.post(
            f"/v1/disputes/{did}/offers", json={"release_to_creator": 9_000, "refund_to_brand": 1}
        ),
        422,
        "validation_error",
    )
    escalated = await ok(await brand.client.post(f"/v1/disputes/{did}/escalate"))
    assert escalated["stage"] == "mediation"

    listed = await ok(await m1.client.get("/v1/disputes", params={"stage": "mediation"}))
    assert did in [d["id"] for d in listed["items"]]
    assert_problem(
        await m1.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": m2.id}),
        403,
        "forbidden",
    )
    first, second = await asyncio.gather(
        m1.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": m1.id}),
        m2.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": m2.id}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (m1, m2) if first.status_code == 200 else (m2, m1)
    assert_problem(
        await loser.client.post(
            f"/v1/disputes/{did}/proposal",
            json={"release_to_creator": 7_000, "refund_to_brand": 8_000},
        ),
        403,
        "forbidden",
    )
    await ok(
        await winner.client.post(
            f"/v1/disputes/{did}/request-evidence",
            json={"note": "Show the post", "from_side": "creator"},
        )
    )
    assert_problem(
        await winner.client.post(
            f"/v1/disputes/{did}/proposal",
            json={"release_to_creator": 7_000, "refund_to_brand": 7_000},
        ),
        422,
        "validation_error",
    )
    proposed = await ok(
        await winner.client.post(
            f"/v1/disputes/{did}/proposal",
            json={
                "release_to_creator": 7_000,
                "refund_to_brand": 8_000,
                "rationale": "partly done",
            },
        )
    )
    assert proposed["stage"] == "awaiting_acceptance"
    rejected = await ok(await creator.client.post(f"/v1/disputes/{did}/proposal/reject"))
    assert rejected["stage"] == "arbitration"
    ruled = await ok(
        await winner.client.post(
            f"/v1/disputes/{did}/ruling",
            json={
                "release_to_creator": 7_500,
                "refund_to_brand": 7_500,
                "rationale": "half posted",
            },
        )
    )
    assert ruled["outcome"] == {
        "release_to_creator": 7_500,
        "refund_to_brand": 7_500,
        "by": "ruling",
    }

    # Settled, then completed by the campaign's next step (each is recorded as it happens).
    settled = await until(brand.client, cid, lambda s: s["status"] == "completed")
    assert settled["escrow"] == {
        **ZERO,
        "funded": 15_000,
        "released_to_creator": 6_750,
        "platform_fee": 750,
        "refunded_to_brand": 7_500,
    }
    assert [d["status"] for d in settled["deliverables"]] == ["settled", "settled"]
    assert settled["status"] == "completed"
    inbox = await ok(await creator.client.get("/v1/notifications"))
    assert {"dispute.filed", "dispute.settlement_proposed", "dispute.resolved"} <= {
        n["type"] for n in inbox["items"]
    }

    case = await ok(await brand.client.get(f"/v1/disputes/{did}/case-file"))
    bundle = case["case_file"]
    assert case["sha256"] == hashlib.sha256(canonical_json(bundle)).hexdigest()
    assert bundle["campaign"]["contract_hash"] == settled["contract_hash"]
    assert bundle["ruling"]["rationale"] == "half posted"
    assert [e["type"] for e in bundle["timeline"]][0] == "dispute.filed"
    assert json.loads(json.dumps(bundle)) == bundle


async def test_evidence_upload_limits_and_access(api, cast):
    brand, creator, (m1, m2), stranger = cast
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]
    uploaded = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ("post.png", PNG, "image/png")},
            data={"description": "screenshot of the post"},
        ),
        201,
    )
    assert uploaded["sha256"] == hashlib.sha256(PNG).hexdigest() and uploaded["size"] == len(PNG)
    link = await ok(
        await brand.client.post(
            f"/v1/disputes/{did}/evidence", json={"kind": "link", "url": "https://ig.com/p/1"}
        ),
        201,
    )
    assert link["sha256"] == hashlib.sha256(b"https://ig.com/p/1").hexdigest()

    too_big = b"\x00" * (EVIDENCE_MAX_BYTES + 1)
    assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence", files={"file": ("big.png", too_big, "image/png")}
        ),
        413,
        "payload_too_large",
    )
    assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ("run.exe", b"MZ", "application/x-msdownload")},
        ),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        await brand.client.post(f"/v1/disputes/{did}/evidence", json={"kind": "link"}),
        422,
        "validation_error",
    )
    dispute = await ok(await brand.client.get(f"/v1/disputes/{did}"))
    assert [e["id"] for e in dispute["evidence"]] == [
        uploaded["id"],
        link["id"],
    ]  # refusals added nothing

    download = await brand.client.get(f"/v1/disputes/{did}/evidence/{uploaded['id']}")
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert_problem(
        await stranger.client.get(f"/v1/disputes/{did}/evidence/{uploaded['id']}"), 404, "not_found"
    )
    # Mediators: only the assigned one downloads.
    await ok(await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": "no"}))
    await ok(await creator.client.post(f"/v1/disputes/{did}/escalate"))
    await ok(await m1.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": m1.id}))
    assert (await m1.client.get(f"/v1/disputes/{did}/evidence/{uploaded['id']}")).content == PNG
    assert_problem(
        await m2.client.get(f"/v1/disputes/{did}/evidence/{uploaded['id']}"), 404, "not_found"
    )
    assert_problem(
        await m2.client.post(f"/v1/disputes/{did}/evidence", json={"kind": "text", "text": "x"}),
        403,
        "forbidden",
    )


async def test_withdrawal_through_the_api_resumes_the_campaign(api, cast):
    brand, creator, _, _ = cast
    cid = (await create_and_fund(brand, creator, amounts=(4_000,)))["id"]
    did = (await file(brand, cid, claim=(0, 4_000)))["id"]
    assert_problem(await creator.client.post(f"/v1/disputes/{did}/withdraw"), 403, "forbidden")
    withdrawn = await ok(await brand.client.post(f"/v1/disputes/{did}/withdraw"))
    assert withdrawn["stage"] == "withdrawn"
    resumed = await until(brand.client, cid, lambda s: s["dispute_id"] is None)
    assert resumed["status"] == "active" and resumed["deliverables"][0]["status"] == "pending"
    assert resumed["escrow"]["held"] == 4_000


async def visible(temporal_env, query: str, expected: str, present: bool = True) -> None:
    """Visibility is eventually consistent: poll until the query agrees, or fail."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        ids = [w.id async for w in temporal_env.client.list_workflows(query)]
        if (expected in ids) == present:
            return
        assert asyncio.get_running_loop().time() < deadline, (query, ids)
        await asyncio.sleep(0.2)


async def test_the_readme_queues_find_the_dispute(api, cast, temporal_env):
    brand, creator, (m1, _), _ = cast
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]
    wid = f"dispute-{did}"
    unassigned = (
        'WorkflowType="DisputeWorkflow" AND ParleyStage="mediation" AND ParleyMediator IS NULL'
    )
    await ok(await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": "no"}))
    await ok(await creator.client.post(f"/v1/disputes/{did}/escalate"))
    await visible(temporal_env, unassigned, wid)
    await visible(temporal_env, f'ParleyCampaign="{cid}" AND ParleyAmount=15000', wid)
    await ok(await m1.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": m1.id}))
    await visible(temporal_env, f'ParleyMediator="{m1.id}"', wid)
    await visible(temporal_env, unassigned, wid, present=False)
    soon = 'WorkflowType="DisputeWorkflow" AND ParleyDeadline < "2100-01-01T00:00:00Z"'
    await visible(temporal_env, soon, wid)
