"""Sending Updates and queries, with workflow refusals mapped to problem+json."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import Request
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import bearer_token
from api.errors import ProblemError
from api.idempotency import CLAIM_STATE, RETRY_ANEW
from api.observability import workflow_id as logged_workflow_id
from domain.errors import HTTP_STATUS, Refusal


def update_id(request: Request, action: str) -> str:
    """With an Idempotency-Key, a retried request attaches to the same Update while its claim
    lives (api/idempotency.py: kept after an unknown outcome, renewed after a definite
    failure); without one, every call is new."""
    key = request.headers.get("idempotency-key")
    if not key:
        return f"{action}:{uuid.uuid4().hex}"
    caller = hashlib.sha256((bearer_token(request) or "").encode()).hexdigest()[:16]
    claim = getattr(request.state, CLAIM_STATE, None)
    return f"{action}:{caller}:{hashlib.sha256(key.encode()).hexdigest()[:32]}:{claim}"


def retry_anew(request: Request) -> None:
    """The workflow refused for now and the Update is over: a retry under the same
    Idempotency-Key must be a new Update (api/idempotency.py)."""
    setattr(request.state, RETRY_ANEW, True)


def refusal_to_problem(error: ApplicationError) -> ProblemError:
    try:
        code = Refusal(error.type)
    except ValueError:
        return ProblemError(500, "internal_error", "The workflow failed unexpectedly")
    return ProblemError(HTTP_STATUS[code], code.value, error.message)


async def send_update(
    client: Client, workflow_id: str, update: Callable[..., Any], arg: Any, *, request: Request
) -> dict[str, Any]:
    """`update` by reference (`CampaignWorkflow.fund`): its name and argument type come from
    the workflow's own definition."""
    handle = client.get_workflow_handle(workflow_id)
    logged_workflow_id.set(workflow_id)  # on this request's log lines
    try:
        return await handle.execute_update(
            update, arg, id=update_id(request, update.__name__), result_type=dict
        )
    except WorkflowUpdateFailedError as err:
        if isinstance(err.cause, ApplicationError):
            problem = refusal_to_problem(err.cause)
            if problem.code == Refusal.PAYMENT_UNAVAILABLE:
                retry_anew(request)
            raise problem from None
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, "invalid_state", "this workflow has ended") from None
        raise


async def query_state(
    client: Client, workflow_id: str, state: Callable[..., Any]
) -> dict[str, Any] | None:
    """`state`: the workflow's query by reference (`CampaignWorkflow.state`); None when the
    workflow is gone."""
    try:
        return await client.get_workflow_handle(workflow_id).query(state, result_type=dict)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
