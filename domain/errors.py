"""Refusals a workflow gives to an action, typed with the SPEC's machine codes.

Raised from Update validators (nothing reaches history) or handlers; the API maps the type
to its HTTP status. Always an ApplicationError: anything else would fail the workflow task.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio.exceptions import ApplicationError


class Refusal(StrEnum):
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    CONTRACT_CHANGED = "contract_changed"
    REVISION_LIMIT_REACHED = "revision_limit_reached"
    DISPUTE_OPEN = "dispute_open"
    ALREADY_REVIEWED = "already_reviewed"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_UNAVAILABLE = "payment_unavailable"
    VALIDATION_ERROR = "validation_error"


HTTP_STATUS = {
    Refusal.FORBIDDEN: 403,
    Refusal.NOT_FOUND: 404,
    Refusal.INVALID_STATE: 409,
    Refusal.CONTRACT_CHANGED: 409,
    Refusal.REVISION_LIMIT_REACHED: 409,
    Refusal.DISPUTE_OPEN: 409,
    Refusal.ALREADY_REVIEWED: 409,
    Refusal.PAYMENT_FAILED: 402,
    Refusal.PAYMENT_UNAVAILABLE: 503,
    Refusal.VALIDATION_ERROR: 422,
}


def refuse(code: Refusal, message: str) -> ApplicationError:
    return ApplicationError(message, type=code.value, non_retryable=True)
