"""An unassigned mediator sees a dispute's queue summary, never its content (SPEC §1).

A mediator "sees disputes in mediation/arbitration" and "reads the campaign's messages and
evidence once assigned": before assignment, ids, stage, amounts, deadlines and evidence
metadata; no statements, evidence text, links or quoted messages, and no case file.
"""

from __future__ import annotations

import json

from tests.api.test_campaigns import create_and_fund, ok
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem

STATEMENT = "SECRET-STATEMENT nothing was posted"
RESPONSE = "SECRET-RESPONSE I posted on time"
TEXT = "SECRET-TEXT the DM where they agreed"
LINK = "https://example.com/SECRET-LINK"
QUOTED = "SECRET-MESSAGE we will pay anyway"
SECRETS = ("SECRET-STATEMENT", "SECRET-RESPONSE", "SECRET-TEXT", "SECRET-LINK", "SECRET-MESSAGE")


def leaks(document) -> list[str]:
    dumped = json.dumps(document)
    return [s for s in SECRETS if s in dumped]


async def test_unassigned_mediator_sees_a_summary_and_no_case_file(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    assigned, other = await make_party("mediator"), await make_party("mediator")
    cid = (await create_and_fund(brand, creator))["id"]
    message = await ok(
        await brand.client.post(f"/v1/campaigns/{cid}/messages", json={"body": QUOTED}), 201
    )
    did = (await file(brand, cid, statement=STATEMENT))["id"]
    for evidence in (
        {"kind": "text", "text": TEXT, "description": "the DM"},
        {"kind": "link", "url": LINK},
        {"kind": "message", "message_id": message["id"]},
    ):
        await ok(await brand.client.post(f"/v1/disputes/{did}/evidence", json=evidence), 201)
    await ok(await creator.client.post(f"/v1/disputes/{did}/respond", json={"statement": RESPONSE}))
    await ok(await creator.client.post(f"/v1/disputes/{did}/escalate"))

    full = await ok(await brand.client.get(f"/v1/disputes/{did}"))
    assert set(leaks(full)) == set(SECRETS)  # the parties read everything

    # Unassigned: every mediator sees the queue summary, in the list and by id.
    for mediator in (assigned, other):
        summary = await ok(await mediator.client.get(f"/v1/disputes/{did}"))
        # Before the fix the whole dispute came back: statement, response, text, link, quote.
        assert leaks(summary) == [], summary
        assert summary["redacted"] is True
        for key in ("stage", "disputed_amount", "claim", "deliverables", "reason", "deadline"):
            assert summary[key] == full[key], key
        assert (summary["brand_id"], summary["creator_id"]) == (brand.id, creator.id)
        assert summary["mediator_id"] is None and summary["mediator_overdue"] is False
        assert [(e["id"], e["kind"], e["sha256"]) for e in summary["evidence"]] == [
            (e["id"], e["kind"], e["sha256"]) for e in full["evidence"]
        ]
        queue = await ok(await mediator.client.get("/v1/disputes", params={"stage": "mediation"}))
        listed = next(d for d in queue["items"] if d["id"] == did)
        assert leaks(listed) == [] and listed["stage"] == "mediation"
        assert_problem(await mediator.client.get(f"/v1/disputes/{did}/case-file"), 403, "forbidden")

    # Assigned: the whole dispute and its case file; the other mediator still the summary.
    await ok(
        await assigned.client.post(f"/v1/disputes/{did}/assign", json={"mediator_id": assigned.id})
    )
    mine = await ok(await assigned.client.get(f"/v1/disputes/{did}"))
    assert set(leaks(mine)) == set(SECRETS) and mine["redacted"] is False
    listed = await ok(await assigned.client.get("/v1/disputes"))
    assert set(leaks(next(d for d in listed["items"] if d["id"] == did))) == set(SECRETS)
    case = await ok(await assigned.client.get(f"/v1/disputes/{did}/case-file"))
    assert set(leaks(case)) == set(SECRETS)

    theirs = await ok(await other.client.get(f"/v1/disputes/{did}"))
    assert leaks(theirs) == [] and theirs["mediator_id"] == assigned.id
    listed = await ok(await other.client.get("/v1/disputes"))
    assert leaks(next(d for d in listed["items"] if d["id"] == did)) == []
    assert_problem(await other.client.get(f"/v1/disputes/{did}/case-file"), 403, "forbidden")

    # The admin sees everything; so do the parties, in the list as well.
    assert set(leaks(await ok(await api.http.get(f"/v1/disputes/{did}")))) == set(SECRETS)
    assert set(leaks(await ok(await api.http.get(f"/v1/disputes/{did}/case-file")))) == set(SECRETS)
    listed = await ok(await creator.client.get("/v1/disputes"))
    assert set(leaks(next(d for d in listed["items"] if d["id"] == did))) == set(SECRETS)
