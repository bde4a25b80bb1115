"""The dispute workflow's own caps (issue #11): its validators refuse what would grow its state
without bound, so a payload sent around the API (the Temporal UI, a script) is refused too.

100 evidence items, 100 offers and 20 evidence requests per dispute; evidence text and quotes
stay out of the workflow (the API stores them by sha256), so a long `text` is refused.
"""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowUpdateFailedError

from domain.dispute import (
    AcceptOffer,
    AddEvidence,
    EvidenceItem,
    MakeOffer,
    PartyAction,
    RequestEvidence,
    Respond,
)
from tests.workflows.test_campaign import BRAND, CREATOR
from tests.workflows.test_dispute import MEDIATOR, file, funded, refused, to_mediation
from workflows.dispute import DisputeWorkflow


def item(n: int, **fields) -> EvidenceItem:
    return EvidenceItem(
        **{
            "id": f"evd_{n}",
            "kind": "link",
            "submitted_by": BRAND,
            "at": "2026-01-01T00:00:00Z",
            "sha256": f"{n:064x}",
            "url": f"https://example.com/p/{n}",
            **fields,
        }
    )


def add(dispute, evidence: EvidenceItem):
    return dispute.execute_update(
        DisputeWorkflow.add_evidence, AddEvidence(actor_id=evidence.submitted_by, item=evidence)
    )


async def test_the_101st_evidence_item_is_refused(env, task_queue):
    dispute = await file(env, await funded(env, task_queue))
    for n in range(100):
        await add(dispute, item(n))
    message = await refused(add(dispute, item(100)), "validation_error")
    assert "100" in message
    assert len((await dispute.query(DisputeWorkflow.state))["evidence"]) == 100


async def test_concurrent_updates_cannot_pass_the_cap(env, task_queue):
    """Updates admitted while others wait for the lock count against the cap too."""
    dispute = await file(env, await funded(env, task_queue))
    for n in range(95):
        await add(dispute, item(n))
    results = await asyncio.gather(
        *(add(dispute, item(n)) for n in range(95, 105)), return_exceptions=True
    )
    refusals = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(refusals) == 5, results
    assert {r.cause.type for r in refusals} == {"validation_error"}
    assert len((await dispute.query(DisputeWorkflow.state))["evidence"]) == 100


async def test_evidence_text_and_oversized_metadata_stay_out_of_the_workflow(env, task_queue):
    dispute = await file(env, await funded(env, task_queue))
    long_text = item(1, kind="text", url=None, text="x" * 45_000)
    await refused(add(dispute, long_text), "validation_error")
    await refused(add(dispute, item(2, description="d" * 2_001)), "validation_error")
    await refused(add(dispute, item(3, url="https://x.io/" + "p" * 2_000)), "validation_error")
    await refused(add(dispute, item(4, sha256="not a digest")), "validation_error")
    # Metadata only (the API's shape today) is taken; so is a short inline text, as before.
    await add(dispute, item(5, kind="text", url=None))
    await add(dispute, item(6, kind="text", url=None, text="note 6"))
    state = await dispute.query(DisputeWorkflow.state)
    assert [e["id"] for e in state["evidence"]] == ["evd_5", "evd_6"]


async def test_the_101st_offer_is_refused(env, task_queue):
    dispute = await file(env, await funded(env, task_queue))
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did")
    )
    for n in range(100):
        actor = BRAND if n % 2 else CREATOR
        await dispute.execute_update(
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=actor, release_to_creator=n, refund_to_brand=15_000 - n),
        )
    offer = MakeOffer(actor_id=BRAND, release_to_creator=1, refund_to_brand=14_999)
    await refused(dispute.execute_update(DisputeWorkflow.make_offer, offer), "validation_error")
    state = await dispute.query(DisputeWorkflow.state)
    assert len(state["offers"]) == 100
    # Agreement is still open: the last offer can be accepted.
    await dispute.execute_update(
        DisputeWorkflow.accept_offer,
        AcceptOffer(actor_id=CREATOR, offer_id=state["offers"][-1]["id"]),
    )


async def test_the_21st_evidence_request_is_refused(env, task_queue):
    dispute = await file(env, await funded(env, task_queue))
    await to_mediation(dispute)
    for n in range(20):
        await dispute.execute_update(
            DisputeWorkflow.request_evidence,
            RequestEvidence(mediator_id=MEDIATOR, note=f"show post {n}"),
        )
    again = RequestEvidence(mediator_id=MEDIATOR, note="one more")
    await refused(
        dispute.execute_update(DisputeWorkflow.request_evidence, again), "validation_error"
    )
    assert len((await dispute.query(DisputeWorkflow.state))["evidence_requests"]) == 20
    # The parties still act.
    await dispute.execute_update(DisputeWorkflow.withdraw, PartyAction(actor_id=BRAND))


def test_state_recorded_with_inline_text_still_reads():
    """Runs that stored text in their state (before #11) still read it, and carry it over
    continue-as-new: the field stays, optional, on the model."""
    old = {
        "id": "evd_old",
        "kind": "text",
        "submitted_by": BRAND,
        "at": "2025-01-01T00:00:00Z",
        "description": "",
        "sha256": "a" * 64,
        "text": "t" * 50_000,
    }
    assert EvidenceItem.model_validate(old).text == "t" * 50_000
    assert EvidenceItem.model_validate({**old, "text": None}).text is None
