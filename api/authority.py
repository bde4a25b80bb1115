"""The API's signature on every Update it sends (see domain/authority.py): a client
interceptor, so no route can forget it."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)

from domain.authority import ASSERTION_HEADER, payload_digest, sign_action

# Long enough for a queued Update to reach its validator, short enough that a copied header
# is soon worthless.
ASSERTION_TTL = timedelta(minutes=5)


class ApiSigner(Interceptor):
    def __init__(self, key: bytes, ttl: timedelta = ASSERTION_TTL) -> None:
        self.key, self.ttl = key, ttl

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Signing(next, self.key, self.ttl)


class _Signing(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, key: bytes, ttl: timedelta) -> None:
        super().__init__(next)
        self.key, self.ttl = key, ttl

    def _header(self, workflow_id: str, update: str, args) -> Payload:
        expires = int(time.time() + self.ttl.total_seconds())
        assertion = sign_action(self.key, workflow_id, update, payload_digest(args), expires)
        return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(assertion).encode())

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle:
        if input.args:
            header = self._header(input.id, input.update, input.args)
            input.headers = {**input.headers, ASSERTION_HEADER: header}
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle:
        update = input.update_workflow_input
        if update.args:
            header = self._header(input.start_workflow_input.id, update.update, update.args)
            update.headers = {**update.headers, ASSERTION_HEADER: header}
        return await super().start_update_with_start_workflow(input)
