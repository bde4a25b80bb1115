"""Answers an Update repeated into a later run with the answer the first one got.

The API derives an Update's id from the client's Idempotency-Key, and Temporal dedupes Update
ids within a run only. A client that retries after its first attempt completed — the answer
was lost to a timeout — and reaches the workflow after it continued as new would otherwise
run the action again: refused by the state guards (a second `submit`) or, worse, done twice
(a second offer). So a workflow keeps its recent answers (`answered`, carried in its
continue-as-new input) and this interceptor answers a known id from them without validating
or running the handler again.

Replay-safe: the answers are rebuilt by the handlers replaying, and a known id can only
reach a run from an earlier run (Temporal does not deliver an id twice within one run).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

with workflow.unsafe.imports_passed_through():
    from domain.campaign import ANSWERS_CARRIED


class RepeatedUpdates(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return AnswerRepeats


class AnswerRepeats(WorkflowInboundInterceptor):
    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        answers = _answers()
        if answers is None or input.id not in answers:
            super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        answers = _answers()
        if answers is None:
            return await super().handle_update_handler(input)
        if input.id in answers:
            return answers[input.id]
        result = await super().handle_update_handler(input)
        if isinstance(result, dict):
            answers[input.id] = result
            while len(answers) > ANSWERS_CARRIED:
                del answers[next(iter(answers))]  # the oldest
        return result


def _answers() -> dict[str, dict[str, Any]] | None:
    """The workflow's answer book, if it keeps one (campaigns and disputes do)."""
    return getattr(workflow.instance(), "answered", None)
