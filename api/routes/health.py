"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import problem_response
from api.openapi import problems
from api.resources import Ready, Status

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0


@router.get("/healthz", response_model=Status)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_database(request: Request) -> None:
    async with request.app.state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_temporal(request: Request) -> None:
    client = request.app.state.temporal
    healthy = await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT))
    if not healthy:
        raise RuntimeError("health check reported not serving")


@router.get("/readyz", response_model=Ready, responses=problems(503))
async def readyz(request: Request) -> JSONResponse:
    """Database and Temporal reported separately; 503 names whichever is down."""
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("temporal", _check_temporal)):
        try:
            await asyncio.wait_for(check(request), CHECK_TIMEOUT + 1)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", reported by name
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        return problem_response(
            503, "not_ready", f"Unavailable: {', '.join(failing)}", "/readyz", checks=checks
        )
    return JSONResponse({"status": "ready", "checks": checks})
