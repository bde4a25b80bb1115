"""RFC 9457 problem+json for every error, each with a machine `code`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("parley.api")

PROBLEM_JSON = "application/problem+json"

# Default machine codes for statuses raised without one (e.g. by the framework).
_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


DEFAULT_RETRY_AFTER = 2  # seconds


class ProblemError(Exception):
    """Raised anywhere in the API to answer with a problem document."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    retry_after: int | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://parley.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status in (429, 503):  # worth retrying: say when
        headers["Retry-After"] = str(retry_after or DEFAULT_RETRY_AFTER)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(422, "validation_error", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _DEFAULT_CODES.get(exc.status_code, "error")
        return problem_response(exc.status_code, code, str(exc.detail), request.url.path)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)  # every pooled connection busy past the pool's wait
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return problem_response(
            503, "database_unavailable", "The database is unavailable", request.url.path
        )

    @app.exception_handler(RPCError)
    async def _temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return problem_response(
                503, "temporal_unavailable", "The workflow service is unavailable", request.url.path
            )
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:  # e.g. too many Updates in flight
            detail = "The workflow is busy with other requests; retry shortly"
            return problem_response(429, "too_many_requests", detail, request.url.path)
        log.error("temporal error on %s: %s", request.url.path, exc)
        return problem_response(500, "internal_error", "Internal server error", request.url.path)

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _outcome_unknown(request: Request, exc: Exception) -> JSONResponse:
        detail = (
            "The action was sent but its outcome is not known yet; retry with the same "
            "Idempotency-Key to learn it"
        )
        return problem_response(503, "outcome_unknown", detail, request.url.path)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
            # The lazy Temporal client could not connect (the SDK says so with a RuntimeError).
            detail = "The workflow service is unavailable; nothing was changed"
            return problem_response(503, "temporal_unavailable", detail, request.url.path)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "Internal server error", request.url.path)
