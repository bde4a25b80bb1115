"""Evidence text and quoted messages live outside the dispute workflow (issue #11).

Before the fix every text item sat in the workflow's state, so each Update's record activity
and the `state` query carried all of them: after ~44 items of 45,000 characters they passed
Temporal's 2 MB payload limit and the dispute stopped answering. The text is now stored in the
database by its sha256 before the Update is sent, and reads put it back.
"""

from __future__ import annotations

import hashlib
import json

from sqlmodel import select

from db import models
from tests.api.test_campaigns import create_and_fund, ok
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem

ITEMS = 50  # 50 × 45,000 chars: 2.25 MB, past the 2 MB payload limit
CHARS = 45_000
STATE_BUDGET = 200_000  # bytes of the `state` query's JSON, whatever the evidence holds


def long_text(n: int) -> str:
    return (f"[{n:03d}] " + "the post was never published; " * 2_000)[:CHARS]


async def workflow_state(temporal_env, did: str) -> dict:
    handle = temporal_env.client.get_workflow_handle(f"dispute-{did}")
    return await handle.query("state", result_type=dict)


async def test_many_long_texts_leave_the_dispute_working(api, make_party, temporal_env):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]

    added = []
    for n in range(ITEMS):
        body = {"kind": "text", "text": long_text(n), "description": f"exhibit {n}"}
        response = await brand.client.post(f"/v1/disputes/{did}/evidence", json=body)
        assert response.status_code == 201, (n, response.status_code, response.text[:300])
        added.append(response.json())
    # The answer keeps its shape: the text and its digest.
    assert added[0]["text"] == long_text(0)
    assert added[0]["sha256"] == hashlib.sha256(long_text(0).encode()).hexdigest()

    # The workflow keeps metadata only, so its state stays small however much was filed.
    state = await workflow_state(temporal_env, did)
    size = len(json.dumps(state).encode())
    assert size < STATE_BUDGET, size
    assert len(state["evidence"]) == ITEMS
    assert all(item.get("text") is None for item in state["evidence"])

    # The respondent still acts.
    await ok(await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": "no"}))
    await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/offers",
            json={"release_to_creator": 9_000, "refund_to_brand": 6_000},
        ),
        201,
    )

    # Every read puts the text back.
    dispute = await ok(await creator.client.get(f"/v1/disputes/{did}"))
    assert [e["text"] for e in dispute["evidence"]] == [long_text(n) for n in range(ITEMS)]
    assert dispute["stage"] == "negotiation"
    one = await ok(await creator.client.get(f"/v1/disputes/{did}/evidence/{added[7]['id']}"))
    assert one["text"] == long_text(7) and one["description"] == "exhibit 7"
    case = await ok(await brand.client.get(f"/v1/disputes/{did}/case-file"))
    assert case["case_file"]["evidence"][ITEMS - 1]["text"] == long_text(ITEMS - 1)


async def test_a_quoted_message_round_trips(api, make_party, temporal_env, sessionmaker):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    cid = (await create_and_fund(brand, creator))["id"]
    body = "We will pay for the post anyway, whatever happens."
    message = await ok(
        await creator.client.post(f"/v1/campaigns/{cid}/messages", json={"body": body}), 201
    )
    did = (await file(brand, cid))["id"]
    added = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            json={"kind": "message", "message_id": message["id"], "description": "their word"},
        ),
        201,
    )
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert (added["kind"], added["text"], added["sha256"]) == ("message", body, digest)
    assert added["message_id"] == message["id"]

    # Stored once, by its digest; the workflow holds the reference only.
    async with sessionmaker() as session:
        stored = await session.get(models.EvidenceText, digest)
    assert stored is not None and stored.text == body
    (item,) = (await workflow_state(temporal_env, did))["evidence"]
    assert item["text"] is None and item["sha256"] == digest

    dispute = await ok(await brand.client.get(f"/v1/disputes/{did}"))
    assert dispute["evidence"][0]["text"] == body
    one = await ok(await brand.client.get(f"/v1/disputes/{did}/evidence/{added['id']}"))
    assert one == added
    case = (await ok(await brand.client.get(f"/v1/disputes/{did}/case-file")))["case_file"]
    assert case["messages"][0]["text"] == body
    listed = await ok(await brand.client.get("/v1/disputes", params={"campaign_id": cid}))
    assert listed["items"][0]["evidence"][0]["text"] == body


async def test_the_101st_evidence_item_is_refused_before_anything_is_stored(
    api, make_party, sessionmaker
):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    cid = (await create_and_fund(brand, creator))["id"]
    did = (await file(brand, cid))["id"]
    for n in range(100):
        body = {"kind": "link", "url": f"https://example.com/p/{n}"}
        await ok(await brand.client.post(f"/v1/disputes/{did}/evidence", json=body), 201)
    text = "one item too many"
    assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence", json={"kind": "text", "text": text}
        ),
        422,
        "validation_error",
    )
    async with sessionmaker() as session:
        digest = hashlib.sha256(text.encode()).hexdigest()
        query = select(models.EvidenceText).where(models.EvidenceText.sha256 == digest)
        assert (await session.exec(query)).first() is None
    dispute = await ok(await brand.client.get(f"/v1/disputes/{did}"))
    assert len(dispute["evidence"]) == 100
