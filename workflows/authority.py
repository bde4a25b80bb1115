"""The worker's check of who sent an Update (see domain/authority.py), before any validator.

Validators do not run on replay, so neither does this check: keys may rotate and assertions
expire without touching histories already recorded.
"""

from __future__ import annotations

import json

from temporalio import workflow
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

with workflow.unsafe.imports_passed_through():
    from domain.authority import (
        ASSERTION_HEADER,
        payload_digest,
        verify_action,
        verify_console_token,
    )
    from domain.errors import Refusal, refuse

FROM_THE_API_ONLY = (
    "This action is accepted only from the Parley API, which signs it for the caller; "
    "the Temporal UI cannot act for a party or the admin."
)


class AuthorityInterceptor(Interceptor):
    """Refuses an Update that carries arguments unless the Parley API signed it, or a mediator
    sends it with a console token issued to that mediator."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        key = self.key

        class CheckSender(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if input.args:
                    _check_sender(key, input)
                super().handle_update_validator(input)

        return CheckSender


def _check_sender(key: bytes | None, input: HandleUpdateInput) -> None:
    if key is None:
        raise refuse(Refusal.FORBIDDEN, "the worker has no authority key configured")
    now, info = workflow.now(), workflow.info()
    header = input.headers.get(ASSERTION_HEADER)
    if header is not None:
        assertion = json.loads(header.data)
        digest = payload_digest(input.args)
        if verify_action(key, assertion, info.workflow_id, input.update, digest, now):
            return
        raise refuse(Refusal.FORBIDDEN, "the action's signature is invalid or has expired")
    (arg,) = input.args
    token, mediator = getattr(arg, "console_token", None), getattr(arg, "mediator_id", None)
    if token is None or mediator is None:
        raise refuse(Refusal.FORBIDDEN, FROM_THE_API_ONLY)
    if getattr(arg, "reassign", False):
        raise refuse(Refusal.FORBIDDEN, "only the admin reassigns a dispute, through the API")
    if not verify_console_token(key, token, mediator, now):
        raise refuse(
            Refusal.FORBIDDEN,
            f"console_token is not valid for {mediator} (or has expired): "
            "get one from POST /v1/mediators/me/console-token",
        )
