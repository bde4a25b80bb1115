"""The dispute's current details as the Temporal UI reads them, with signed evidence links
(issue #12).

The UI reads current details through the built-in `__temporal_workflow_metadata` query, each
time a workflow's page opens or refreshes. This interceptor re-renders them there, at the
moment of reading: evidence items get links to the API's console route signed for
`EVIDENCE_LINK_TTL` from now, and deadlines read "in 2 h" / "overdue by 3 h" against the wall
clock. So a dispute that sat idle for days shows working links and true distances the moment
its page is opened, and nothing is written to history for it: a query is no command, and the
signing key never enters the workflow's state. What the workflow itself set (at its last
change, without links) stays the answer when no links are configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from temporalio import workflow
from temporalio.worker import (
    HandleQueryInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

with workflow.unsafe.imports_passed_through():
    from domain.authority import evidence_link_signature

METADATA_QUERY = "__temporal_workflow_metadata"
# Long enough to read the case and click; a copied link is worthless soon after. Reloading
# the dispute's page in the UI signs new ones.
EVIDENCE_LINK_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class EvidenceLinks:
    """Signs console links to evidence items; built by the worker, outside the sandbox, so its
    clock is the real one."""

    key: bytes
    api_url: str  # the API as the mediators' browsers reach it
    ttl: timedelta = EVIDENCE_LINK_TTL
    clock: Callable[[], float] = field(default=time.time)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def __call__(self, dispute_id: str, evidence_id: str) -> str:
        expires = int(self.clock() + self.ttl.total_seconds())
        signature = evidence_link_signature(self.key, dispute_id, evidence_id, expires)
        path = f"/v1/console/disputes/{quote(dispute_id)}/evidence/{quote(evidence_id)}"
        query = urlencode({"expires": expires, "signature": signature})
        return f"{self.api_url.rstrip('/')}{path}?{query}"


class ConsoleDetailsInterceptor(Interceptor):
    """Answers the UI's metadata query with details rendered now, evidence links signed, for
    every workflow that offers `console_details(links, now)`."""

    def __init__(self, links: EvidenceLinks | None) -> None:
        self.links = links

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        links = self.links
        if links is None:
            return None

        class FreshDetails(WorkflowInboundInterceptor):
            async def handle_query(self, input: HandleQueryInput) -> Any:
                result = await super().handle_query(input)
                if input.query == METADATA_QUERY:
                    render = getattr(workflow.instance(), "console_details", None)
                    if render is not None:
                        try:
                            result.current_details = render(links, links.now())
                        except Exception:  # the details the workflow set stay the answer
                            workflow.logger.exception("current details not re-rendered")
                return result

        return FreshDetails
