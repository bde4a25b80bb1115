"""Records replay fixtures beside the old ones: `python -m tests.histories.record`.

Histories are append-only: running campaigns were recorded by older code, so every fixture
ever recorded must keep replaying. Each run writes `{scenario}@{commit}.json` for the commit
checked out (commit the workflow change first) and never overwrites a file; a change that
alters what a workflow does is guarded with `workflow.patched` so the old files still replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import Settings
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from db.models import Party
from domain import search_attributes
from domain.campaign import (
    AcceptCampaign,
    Action,
    DeliverableAction,
    FundRequest,
    RequestChanges,
    RetryPayouts,
    SubmitDeliverable,
)
from domain.dispute import (
    AssignMediator,
    FileDispute,
    IssueRuling,
    MakeOffer,
    PartyAction,
    ProposeSettlement,
    Respond,
    Split,
)
from domain.parties import Role
from domain.proof import Metric, Objective, PayoutRule
from tests.conftest import ADMIN_TOKEN, AS_THE_API, TEMPORAL_BIN, TEST_SERVER_BIN
from tests.metrics_service import reading_from, running_metrics_service
from tests.workflows.test_campaign import BRAND, CREATOR, new_campaign
from worker import build_worker
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

HERE = Path(__file__).parent


async def accepted(client, task_queue: str, new) -> WorkflowHandle:
    """The campaign started and accepted by its creator (the contract hash read back)."""
    handle = await client.start_workflow(
        CampaignWorkflow.run, new, id=f"campaign-{new.id}", task_queue=task_queue
    )
    contract = (await handle.query(CampaignWorkflow.state))["contract_hash"]
    await handle.execute_update(
        CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
    )
    return handle


async def completed_campaign(client, task_queue: str) -> str:
    new = new_campaign(amounts=(10_000, 5_000))
    handle = await accepted(client, task_queue, new)
    declined = FundRequest(actor_id=BRAND, payment_method="pm_card_visa_chargeDeclined")
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update(CampaignWorkflow.fund, declined)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    work = {"actor_id": CREATOR, "url": "https://x.io/1"}
    await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=0, **work))
    await handle.execute_update(
        CampaignWorkflow.request_changes, RequestChanges(actor_id=BRAND, index=0, reason="tag us")
    )
    await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=0, **work))
    await handle.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=1, **work))
    await handle.result()  # auto-approval, releases, review period
    return (await handle.fetch_history()).to_json()


async def cancelled_campaign(client, task_queue: str) -> str:
    new = new_campaign(amounts=(6_000, 4_000))
    handle = await accepted(client, task_queue, new)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    await handle.execute_update(CampaignWorkflow.cancel, Action(actor_id=CREATOR))
    await handle.result()
    return (await handle.fetch_history()).to_json()


async def disputed_campaign(client, task_queue: str) -> dict[str, str]:
    """A dispute through offers, mediation, a rejected proposal and a ruling."""
    new = new_campaign(amounts=(10_000, 5_000))
    handle = await accepted(client, task_queue, new)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    filed = await handle.execute_update(
        CampaignWorkflow.file_dispute,
        FileDispute(
            actor_id=BRAND,
            reason="late",
            claim=Split(release_to_creator=0, refund_to_brand=15_000),
            statement="Nothing posted",
        ),
    )
    dispute = client.get_workflow_handle(f"dispute-{filed['dispute_id']}")
    mediator = "pty_mediator"
    steps = [
        (DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="Posted late")),
        (
            DisputeWorkflow.make_offer,
            MakeOffer(actor_id=CREATOR, release_to_creator=9_000, refund_to_brand=6_000),
        ),  # noqa: E501
        (DisputeWorkflow.escalate, PartyAction(actor_id=BRAND)),
        (DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=mediator)),
        (
            DisputeWorkflow.propose_settlement,
            ProposeSettlement(
                mediator_id=mediator, release_to_creator=7_000, refund_to_brand=8_000
            ),
        ),  # noqa: E501
        (DisputeWorkflow.reject_proposal, PartyAction(actor_id=CREATOR)),
        (
            DisputeWorkflow.issue_ruling,
            IssueRuling(
                mediator_id=mediator,
                release_to_creator=7_500,
                refund_to_brand=7_500,
                rationale="half",
            ),
        ),  # noqa: E501
    ]
    for update, arg in steps:
        await dispute.execute_update(update, arg)
    await handle.result()  # settlement, completion, review period
    return {
        "campaign_disputed": (await handle.fetch_history()).to_json(),
        "dispute_ruled": (await dispute.fetch_history()).to_json(),
    }


async def interrupted_dispute(client, task_queue: str) -> dict[str, str]:
    """The Temporal UI's buttons on a dispute: Request Cancellation (refused and recorded),
    then Terminate (the campaign takes its deliverables back and completes). Recorded on the
    dev server in real time, hence the short clearing and review periods."""
    short = {"clearing_period": timedelta(seconds=1), "review_period": timedelta(seconds=2)}
    new = new_campaign(amounts=(10_000, 5_000), **short)
    handle = await accepted(client, task_queue, new)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    filed = await handle.execute_update(
        CampaignWorkflow.file_dispute,
        FileDispute(
            actor_id=BRAND,
            reason="late",
            claim=Split(release_to_creator=0, refund_to_brand=15_000),
            statement="Nothing posted",
        ),
    )
    dispute = client.get_workflow_handle(f"dispute-{filed['dispute_id']}")
    await dispute.cancel()
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="Posted late")
    )
    await dispute.terminate(reason="operator")
    for _ in range(400):  # the campaign hears of the termination asynchronously
        if (await handle.query(CampaignWorkflow.state))["dispute_id"] is None:
            break
        await asyncio.sleep(0.05)
    work = {"actor_id": CREATOR, "url": "https://x.io/1"}
    for index in (0, 1):
        await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=index, **work))
        await handle.execute_update(
            CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=index)
        )
    await handle.result()  # releases, review period
    return {
        "campaign_dispute_terminated": (await handle.fetch_history()).to_json(),
        "dispute_cancel_refused": (await dispute.fetch_history()).to_json(),
    }


async def _creator_account(sessionmaker, account: str) -> None:
    async with sessionmaker() as session:
        party = await session.get(Party, CREATOR)
        if party is None:
            party = Party(
                id=CREATOR,
                name="Creator",
                role=Role.CREATOR,
                email="c@example.com",
                api_key_hash="r",
            )
        party.stripe_account = account
        session.add(party)
        await session.commit()


async def owed_payout(client, task_queue: str, sessionmaker) -> str:
    """A dispute's release to a creator whose payouts are not enabled yet: owed while the
    campaign goes on, then sent by the retry once the account can be paid."""
    await _creator_account(sessionmaker, "acct_blockedRecord")
    new = new_campaign(amounts=(10_000, 5_000))
    handle = await accepted(client, task_queue, new)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    filed = await handle.execute_update(
        CampaignWorkflow.file_dispute,
        FileDispute(
            actor_id=BRAND,
            reason="late",
            deliverables=[0],
            claim=Split(release_to_creator=4_000, refund_to_brand=6_000),
            statement="Posted late",
        ),
    )
    dispute = client.get_workflow_handle(f"dispute-{filed['dispute_id']}")
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="fair", accept_claim=True)
    )
    for _ in range(400):  # the campaign settles asynchronously
        if (await handle.query(CampaignWorkflow.state))["owed_payouts"]:
            break
        await asyncio.sleep(0.05)
    work = {"actor_id": CREATOR, "url": "https://x.io/1"}
    await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=1, **work))
    await _creator_account(sessionmaker, "acct_recordReady")
    await handle.execute_update(CampaignWorkflow.retry_payouts, RetryPayouts(reason="KYC"))
    await handle.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=1)
    )
    await handle.result()
    await _creator_account(sessionmaker, "acct_record")
    return (await handle.fetch_history()).to_json()


async def continued_campaign(client, task_queue: str) -> dict[str, str]:
    """A campaign that continues as new (history limit 60) and answers an Update repeated
    into the next run from the answers it carried. Both runs' histories."""
    new = new_campaign(amounts=(1_000,) * 8).model_copy(update={"history_limit": 60})
    handle = await accepted(client, task_queue, new)
    first_run = handle.result_run_id
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    work = {"actor_id": CREATOR, "url": "https://x.io/1"}
    submit_0 = SubmitDeliverable(index=0, **work)
    await handle.execute_update(CampaignWorkflow.submit, submit_0, id="record-submit-0")
    for index in range(1, 8):
        await handle.execute_update(CampaignWorkflow.submit, SubmitDeliverable(index=index, **work))
        await handle.execute_update(
            CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=index)
        )
    latest = client.get_workflow_handle(handle.id)
    await latest.execute_update(CampaignWorkflow.submit, submit_0, id="record-submit-0")
    await latest.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    await handle.result()  # follows the runs to the last
    runs, run_id = [], first_run
    while run_id:  # each run's history, following continue-as-new
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        runs.append(history.to_json())
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id if continued else None
    if len(runs) < 2:
        raise SystemExit("continued_campaign did not continue as new")
    return {"campaign_continued_first_run": runs[0], "campaign_continued_last_run": runs[-1]}


async def proof_campaign(env, task_queue: str, metrics) -> str:
    """A tracked deliverable (issue #15): hourly looks at a metrics service, a views
    objective frozen at its window, a takedown restored within the cure window, then the
    pro-rata release and the refund of the rest."""
    url = metrics.publish("recorded", views=5_000)
    new = new_campaign(amounts=(10_000,))
    spec = new.deliverables[0].model_copy(
        update={
            "live_for": timedelta(days=3),
            "objectives": [Objective(metric=Metric.VIEWS, target=10_000, within=timedelta(days=2))],
            "payout_rule": PayoutRule(kind="pro_rata", floor_bps=3_000),
            "cure_window": timedelta(days=1),
        }
    )
    new = new.model_copy(update={"deliverables": [spec], "proof_poll_every": timedelta(hours=6)})
    handle = await accepted(env.client, task_queue, new)
    await handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
    await handle.execute_update(
        CampaignWorkflow.submit, SubmitDeliverable(actor_id=CREATOR, index=0, url=url)
    )
    await handle.execute_update(
        CampaignWorkflow.approve, DeliverableAction(actor_id=BRAND, index=0)
    )
    await env.sleep(timedelta(days=1))
    metrics.take_down("recorded")
    await env.sleep(timedelta(hours=12))
    metrics.restore("recorded")
    await handle.result()  # released on proof, then the review period ends it
    return (await handle.fetch_history()).to_json()


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _write(histories: dict[str, str], commit: str) -> None:
    for name, history in histories.items():
        path = HERE / f"{name}@{commit}.json"
        if path.exists():
            raise SystemExit(f"{path.name} exists: fixtures are append-only")
        path.write_text(history)
        print(f"recorded {path.name}")


async def main() -> None:
    async with contextlib.AsyncExitStack() as stack:
        await _record(stack)


async def _record(stack: contextlib.AsyncExitStack) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/parley.db"
        upgrade(url)
        engine = make_engine(url)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER_BIN),
            data_converter=pydantic_data_converter,
            interceptors=AS_THE_API,
        )
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default",
                search_attributes={k.name: k.indexed_value_type for k in search_attributes.ALL},
            )
        )
        metrics = await stack.enter_async_context(running_metrics_service())
        # Tracked posts are read from the local metrics service.
        settings = reading_from(
            Settings(
                data_dir=Path(tmp), database_url=url, task_queue="record", admin_token=ADMIN_TOKEN
            ),
            metrics,
        )
        async with build_worker(env.client, settings, make_sessionmaker(engine)):
            histories = {
                "campaign_completed": await completed_campaign(env.client, "record"),
                "campaign_cancelled": await cancelled_campaign(env.client, "record"),
                **await disputed_campaign(env.client, "record"),
                "campaign_owed_payout": await owed_payout(
                    env.client, "record", make_sessionmaker(engine)
                ),
                **await continued_campaign(env.client, "record"),
                "campaign_proof_of_performance": await proof_campaign(env, "record", metrics),
            }
        await env.shutdown()
        # The time-skipping server never tells a parent its child was terminated: the dev
        # server records that scenario.
        live = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL_BIN),
            search_attributes=search_attributes.ALL,
            data_converter=pydantic_data_converter,
            interceptors=AS_THE_API,
            dev_server_log_level="error",
        )
        async with build_worker(live.client, settings, make_sessionmaker(engine)):
            histories.update(await interrupted_dispute(live.client, "record"))
        await live.shutdown()
        _write(histories, _commit())
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
