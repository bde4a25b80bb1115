"""The OpenAPI document a generated client can rely on (issue #14), and `/docs` from packaged
assets (no CDN: it works offline).

FastAPI writes most of the document from the routes' models; what it cannot know is added
here, once, for every operation: each error response as `application/problem+json` with the
`Problem` schema (the 422 too, instead of FastAPI's `HTTPValidationError`), the codes every
operation of its kind can answer, `Idempotency-Key` on every POST, and request bodies of
nullable optional models (`fund`'s) as the plain model, not required.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import HTMLResponse

from api.errors import PROBLEM_JSON, ProblemError
from api.resources import Problem

DOCS_ASSETS = "/docs/assets"

# What each status means here (SPEC §8); the `code`s name the machine codes it carries.
PROBLEM_DESCRIPTIONS = {
    400: "A body that cannot be parsed: not UTF-8 or JSON, or nested too deep (`bad_request`); "
    "for Stripe's webhook a bad signature or event (`invalid_signature`, `invalid_event`)",
    401: "No or invalid API key (`unauthorized`)",
    402: "The card was declined (`payment_failed`)",
    403: "Not allowed for this caller (`forbidden`)",
    404: "Unknown, or not visible to this caller (`not_found`)",
    409: "Wrong state (`invalid_state`, `contract_changed`, `dispute_open`, "
    "`revision_limit_reached`, `idempotency_in_flight`, …)",
    413: "Body too large (`payload_too_large`)",
    415: "File type not allowed (`unsupported_media_type`)",
    422: "Invalid body, parameter or Idempotency-Key (`validation_error`, "
    "`idempotency_key_reused`, `invalid_idempotency_key`)",
    429: "Temporal refuses more in-flight work (`too_many_requests`); see Retry-After",
    503: "Temporal or the database unavailable, or the outcome not known yet "
    "(`temporal_unavailable`, `database_unavailable`, `outcome_unknown`); see Retry-After",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's extra problem responses, e.g. `responses=problems(402)`."""
    return {status: {"description": PROBLEM_DESCRIPTIONS[status]} for status in statuses}


EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `id:` the item's sequence number (send it back as "
        "`Last-Event-ID` to resume), `event:` its kind, `data:` its JSON",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def operation_id(route: APIRoute) -> str:
    """Stable operationIds: `{tag}_{name}`, e.g. `campaigns_accept`."""
    tag = str(route.tags[0]).replace(" ", "_") if route.tags else "default"
    return f"{tag}_{route.name}"


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Replays answer the first response; the same key with another body is a "
    "422 `idempotency_key_reused`, and 409 `idempotency_in_flight` while the first runs.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]+$"},
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
REF_TEMPLATE = "#/components/schemas/{model}"

# Schemas the routes name by hand (a body FastAPI does not read itself: evidence's two forms).
_EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {}


def register_schema(name: str, schema: type[BaseModel] | dict[str, Any]) -> None:
    if not isinstance(schema, dict):
        schema = schema.model_json_schema(ref_template=REF_TEMPLATE)
    _EXTRA_SCHEMAS[name] = schema


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _documented_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """What every operation of this kind can answer, beside its own codes."""
    statuses = {422, 503}  # unknown query parameters; Temporal or the database down
    if operation.get("security"):
        statuses |= {401, 403, 404}
    if method == "post":
        statuses |= {409, 429}  # idempotency in flight, a wrong state; Temporal busy
    if method in ("post", "patch"):
        statuses.add(413)  # the body limit
    if "requestBody" in operation:
        statuses.add(400)  # a body that does not parse
    return statuses


def _unwrap_nullable_body(operation: dict[str, Any]) -> None:
    """`body: Model | None = None` is documented as an optional `Model` body."""
    body = operation.get("requestBody")
    if not body:
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        choices = schema.get("anyOf")
        if choices and len(choices) == 2 and {"type": "null"} in choices:
            media["schema"] = next(c for c in choices if c != {"type": "null"})
            body["required"] = False


def _bytes_first(response: dict[str, Any]) -> None:
    """A download's binary media types before the JSON FastAPI puts first: generators (such
    as openapi-python-client) type a response by its first media type they know, so the
    download reads as a file instead of failing to parse bytes as JSON."""
    content = response.get("content") or {}
    binary = {
        media: spec
        for media, spec in content.items()
        if spec.get("schema", {}).get("format") == "binary"
    }
    if binary:
        response["content"] = {**binary, **content}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in {**_EXTRA_SCHEMAS, "Problem": Problem}.items():
        if not isinstance(schema, dict):
            schema = schema.model_json_schema(ref_template=REF_TEMPLATE)
        schema = dict(schema)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = {**schema, "title": name}
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            for status in _documented_statuses(method, operation):
                responses.setdefault(str(status), {"description": PROBLEM_DESCRIPTIONS[status]})
            operation["responses"] = responses = dict(sorted(responses.items()))
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = _problem_content()
                    if response.get("description") in ("Validation Error", "", None):
                        response["description"] = PROBLEM_DESCRIPTIONS.get(
                            int(status), HTTPStatus(int(status)).phrase
                        )
            if method == "post":
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(IDEMPOTENCY_KEY)
            _unwrap_nullable_body(operation)
            for response in responses.values():
                _bytes_first(response)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- unknown query parameters ------------------------------------------------------------------


def _query_names(dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_unknown_query(request: Request) -> None:
    """A query parameter the operation does not take is a 422, never silently ignored."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return  # browser pages (the console) read what they need themselves
    known = getattr(route, "_parley_query_names", None)
    if known is None:
        known = _query_names(route.dependant)
        route._parley_query_names = known  # type: ignore[attr-defined]
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        errors = [
            {"loc": ["query", name], "msg": "unknown query parameter", "type": "extra_forbidden"}
            for name in unknown
        ]
        detail = "; ".join(f"query.{name}: unknown query parameter" for name in unknown)
        raise ProblemError(422, "validation_error", detail, errors=errors)


# --- /docs and /redoc from packaged assets -------------------------------------------------------


def _assets_dir() -> Path:
    """Swagger UI 5 and ReDoc as the `fastapi-offline` wheel ships them (pinned in
    pyproject.toml): nothing is fetched when a browser opens `/docs`."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    app.mount(DOCS_ASSETS, StaticFiles(directory=_assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc's bundle shows its "powered by" logo from its CDN: images from here only, so
        # the page asks nothing of the internet (tests/ui/test_docs_offline.py).
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page
