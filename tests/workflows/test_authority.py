"""Who really sent an Update (issue #12 item 1, the rule "authority lives in the workflow"):
an Update typed in the Temporal UI carries no API signature, so it cannot act for a party or
the admin; a mediator proves itself with a console token issued to it."""

from __future__ import annotations

import json
import time

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, Interceptor, OutboundInterceptor, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.workflow import _Definition

from domain.authority import (
    ASSERTION_HEADER,
    console_token,
    derive_key,
    payload_digest,
    sign_action,
)
from domain.campaign import SetFrozen
from domain.dispute import AssignMediator, PartyAction, ProposeSettlement, Respond
from tests.conftest import ADMIN_TOKEN
from tests.workflows.test_campaign import BRAND, CREATOR, state
from tests.workflows.test_dispute import MEDIATOR, OTHER_MEDIATOR, file, funded
from workflows import WORKFLOWS
from workflows.authority import FROM_THE_API_ONLY
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

KEY = derive_key(ADMIN_TOKEN)


def as_the_ui(env) -> Client:
    """What the Temporal UI is to the worker: a client that signs nothing."""
    return Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=pydantic_data_converter,
    )


async def refused(call, fragment: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    assert info.value.cause.type == "forbidden", info.value.cause
    assert fragment in info.value.cause.message


def token(mediator: str, valid_for: int = 3600) -> str:
    return console_token(KEY, mediator, int(time.time()) + valid_for)


async def test_a_party_action_typed_in_the_ui_is_refused(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    ui = as_the_ui(env).get_workflow_handle(dispute.id)
    # "respond as the creator, accepting the claim": would refund the brand.
    await refused(
        ui.execute_update(
            DisputeWorkflow.respond,
            Respond(actor_id=CREATOR, statement="ok", accept_claim=True),
        ),
        FROM_THE_API_ONLY,
    )
    await refused(
        ui.execute_update(DisputeWorkflow.withdraw, PartyAction(actor_id=BRAND)),
        FROM_THE_API_ONLY,
    )
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "awaiting_response"


async def test_freezes_are_the_admins_and_the_rails_only(env, task_queue):
    campaign = await funded(env, task_queue)
    ui = as_the_ui(env).get_workflow_handle(campaign.id)
    await refused(
        ui.execute_update(CampaignWorkflow.set_frozen, SetFrozen(frozen=True)),
        FROM_THE_API_ONLY,
    )
    assert (await state(campaign))["status"] == "active"


async def test_a_mediator_in_the_ui_proves_who_it_is(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    await dispute.execute_update(
        DisputeWorkflow.respond, Respond(actor_id=CREATOR, statement="I did post")
    )
    await dispute.execute_update(DisputeWorkflow.escalate, PartyAction(actor_id=BRAND))
    ui = as_the_ui(env).get_workflow_handle(dispute.id)

    await refused(
        ui.execute_update(DisputeWorkflow.assign_mediator, AssignMediator(mediator_id=MEDIATOR)),
        FROM_THE_API_ONLY,
    )
    # A token is for one mediator: another's id (or a typo) is refused.
    await refused(
        ui.execute_update(
            DisputeWorkflow.assign_mediator,
            AssignMediator(mediator_id=OTHER_MEDIATOR, console_token=token(MEDIATOR)),
        ),
        "console_token is not valid",
    )
    await refused(
        ui.execute_update(
            DisputeWorkflow.assign_mediator,
            AssignMediator(mediator_id=MEDIATOR, console_token=token(MEDIATOR, valid_for=-1)),
        ),
        "console_token is not valid",
    )
    await refused(
        ui.execute_update(
            DisputeWorkflow.assign_mediator,
            AssignMediator(mediator_id=MEDIATOR, reassign=True, console_token=token(MEDIATOR)),
        ),
        "only the admin reassigns",
    )
    await ui.execute_update(
        DisputeWorkflow.assign_mediator,
        AssignMediator(mediator_id=MEDIATOR, console_token=token(MEDIATOR)),
    )
    await ui.execute_update(
        DisputeWorkflow.propose_settlement,
        ProposeSettlement(
            mediator_id=MEDIATOR,
            release_to_creator=6_000,
            refund_to_brand=9_000,
            console_token=token(MEDIATOR),
        ),
    )
    current = await dispute.query(DisputeWorkflow.state)
    assert current["mediator_id"] == MEDIATOR and current["stage"] == "awaiting_acceptance"


async def test_a_signature_covers_exactly_one_payload(env, task_queue):
    campaign = await funded(env, task_queue)
    dispute = await file(env, campaign)
    # A header copied from a signed "respond, rejecting" cannot carry "respond, accepting".
    signed_for = [Respond(actor_id=CREATOR, statement="no")]
    expires = int(time.time()) + 600
    assertion = sign_action(KEY, dispute.id, "respond", payload_digest(signed_for), expires)
    header = {
        ASSERTION_HEADER: Payload(
            metadata={"encoding": b"json/plain"}, data=json.dumps(assertion).encode()
        )
    }

    # Headers are set by the caller's interceptors: this one adds the copied header.
    class CopiedHeader(Interceptor):
        def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
            class Add(OutboundInterceptor):
                async def start_workflow_update(self, input):
                    input.headers = {**input.headers, **header}
                    return await super().start_workflow_update(input)

            return Add(next)

    forger = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=pydantic_data_converter,
        interceptors=[CopiedHeader()],
    ).get_workflow_handle(dispute.id)
    await refused(
        forger.execute_update(
            DisputeWorkflow.respond,
            Respond(actor_id=CREATOR, statement="no", accept_claim=True),
        ),
        "signature is invalid",
    )
    # The very payload it was made for passes.
    await forger.execute_update(DisputeWorkflow.respond, signed_for[0])
    assert (await dispute.query(DisputeWorkflow.state))["stage"] == "negotiation"


def test_every_update_that_takes_arguments_has_a_validator():
    # The sender check runs with the validator: an Update without one would skip it.
    for cls in WORKFLOWS:
        for name, update in _Definition.must_from_class(cls).updates.items():
            takes_args = bool(update.arg_types)
            assert not takes_args or update.validator is not None, f"{cls.__name__}.{name}"
