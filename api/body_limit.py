"""A cap on every request body, counted as the bytes arrive (issue #9): a 50 MB body is
refused after its first megabyte, not buffered whole. Sits outside every other middleware,
so nothing reads more than the cap."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response


class BodyTooLarge(HTTPException):
    """An HTTPException, so a route or FastAPI's body parsing that meets it answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = _limit_for(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _too_large(scope, receive, send, limit)

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send, limit)


def _limit_for(scope: Scope) -> int:
    settings = scope["app"].state.settings
    content_type = Headers(scope=scope).get("content-type", "")
    if content_type.startswith("multipart/form-data"):  # evidence files, plus their form fields
        return settings.evidence_max_bytes + 64 * 1024
    return settings.max_body_bytes


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    detail = f"request bodies are limited to {limit} bytes"
    response = problem_response(413, "payload_too_large", detail, scope["path"])
    await response(scope, receive, send)
