"""Every call the API makes to Temporal ends within a bound (issue #9): a hung server is a
503 after a few seconds, not a request that waits for as long as the client does. While it
waits, the request holds no database connection (`api.deps.end_reads`).

A client interceptor, so no route can forget it. An Update or a start that times out may
still take effect, so it answers `outcome_unknown`: retried with the same Idempotency-Key,
it attaches to the same Update id and learns the outcome.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    RPCTimeoutOrCancelledError,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import end_reads


def with_deadlines(client: Client, seconds: float) -> Client:
    """The same connection, with every call bounded."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], Deadlines(seconds)]
    return Client(**config)


class Deadlines(Interceptor):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Bounded(next, self.seconds)


class _Bounded(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, seconds: float) -> None:
        super().__init__(next)
        self.seconds = seconds

    async def _bounded(self, call, input: Any, changes: bool):
        await end_reads()
        input.rpc_timeout = input.rpc_timeout or timedelta(seconds=self.seconds)
        try:
            async with asyncio.timeout(self.seconds):
                return await call(input)
        except TimeoutError:
            if changes:  # api/errors.py: 503 outcome_unknown
                raise RPCTimeoutOrCancelledError(
                    "no answer in time; it may yet take effect"
                ) from None
            # api/errors.py: 503 temporal_unavailable
            raise RPCError("no answer in time", RPCStatusCode.DEADLINE_EXCEEDED, b"") from None

    async def start_workflow(self, input: StartWorkflowInput):
        return await self._bounded(super().start_workflow, input, changes=True)

    async def query_workflow(self, input: QueryWorkflowInput):
        return await self._bounded(super().query_workflow, input, changes=False)

    async def signal_workflow(self, input: SignalWorkflowInput):
        return await self._bounded(super().signal_workflow, input, changes=True)

    async def describe_workflow(self, input: DescribeWorkflowInput):
        return await self._bounded(super().describe_workflow, input, changes=False)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput):
        return await self._bounded(super().start_workflow_update, input, changes=True)

    async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput):
        return await self._bounded(super().start_update_with_start_workflow, input, changes=True)
