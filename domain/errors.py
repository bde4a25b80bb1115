"""Refusals a workflow gives to an action, typed with the SPEC's machine codes.

Raised from Update validators (nothing reaches history) or handlers; the API maps the type
to its HTTP status. Always an ApplicationError: anything else would fail the workflow task.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter
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


REFUSAL_TYPES = frozenset(code.value for code in Refusal)


class RefusalFailureConverter(DefaultFailureConverter):
    """Refusals as one sentence: the Temporal UI shows a failure's `stack_trace` under its
    message, so a refusal (a validator's, the worker's authority check's) goes out without
    one — a traceback with server paths tells a mediator nothing. An Update whose JSON does
    not fit its model ("Failed decoding arguments") becomes a `validation_error` naming the
    fields. Every other failure keeps its stack trace for operators."""

    def to_failure(
        self,
        exception: BaseException,
        payload_converter: PayloadConverter,
        failure: Failure,
    ) -> None:
        invalid = _schema_error(exception)
        if invalid is not None:
            exception = refuse(Refusal.VALIDATION_ERROR, invalid)
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and exception.type in REFUSAL_TYPES:
            failure.stack_trace = ""


def _schema_error(exception: BaseException) -> str | None:
    """The fields an Update's arguments got wrong, when that is why it failed to decode."""
    cause = exception.__cause__
    if not isinstance(exception, RuntimeError) or cause is None:
        return None
    errors = getattr(cause, "errors", None)
    if type(cause).__name__ != "ValidationError" or not callable(errors):
        return None
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ())) or 'body'}: {error.get('msg')}"
        for error in errors()[:5]
    ]
    return "invalid input: " + "; ".join(problems)
