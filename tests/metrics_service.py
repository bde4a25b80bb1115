"""A small metrics service over real HTTP, for the proof-of-performance tests (issue #15).

It hosts the posts themselves (`GET /posts/{name}`: 200 while live, 404 once taken down — what
the `link` provider checks) and their counts (`GET /metrics?post=<post URL>` → `{"views": …}`,
404 for a post taken down or unknown — what the `http` provider reads). A test changes counts
and takes posts down or back up with the methods below, or over HTTP (`PUT /control/{name}`
with counts, `DELETE /control/{name}`), as `make demo` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


class MetricsService:
    def __init__(self) -> None:
        self.base_url = ""
        self.counts: dict[str, dict[str, int]] = {}
        self.down: set[str] = set()
        self.failing: set[str] = set()  # the service answers 503 for these (an outage)
        self.app = Starlette(
            routes=[
                Route("/posts/{name}", self._post),
                Route("/metrics", self._metrics),
                Route("/control/{name}", self._control, methods=["PUT", "DELETE"]),
            ]
        )

    def url(self, name: str) -> str:
        return f"{self.base_url}/posts/{name}"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    def publish(self, name: str, **counts: int) -> str:
        """A live post with these counts; its URL."""
        self.counts[name] = dict(counts)
        self.down.discard(name)
        return self.url(name)

    def take_down(self, name: str) -> None:
        self.down.add(name)

    def restore(self, name: str) -> None:
        self.down.discard(name)

    def fail(self, name: str) -> None:
        self.failing.add(name)

    def _live(self, name: str) -> bool:
        return name in self.counts and name not in self.down

    async def _post(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not self._live(name):
            return PlainTextResponse("gone", status_code=404)
        return PlainTextResponse(f"post {name}")

    async def _metrics(self, request: Request) -> Response:
        post = request.query_params.get("post", "")
        name = post.removeprefix(f"{self.base_url}/posts/")
        if name in self.failing:
            return JSONResponse({"error": "try later"}, status_code=503)
        if post == name or not self._live(name):
            return JSONResponse({"error": "no such post"}, status_code=404)
        return JSONResponse(self.counts[name])

    async def _control(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            self.take_down(name)
        else:
            self.publish(name, **(await request.json()))
        return Response(status_code=204)


def reading_from(settings, service: MetricsService, **more):
    """`settings` for a worker that reads the service's counts (the `http` provider) and may
    reach it (loopback, plain http)."""
    return settings.model_copy(
        update={
            "metrics_provider": "http",
            "metrics_service_url": service.metrics_url,
            "webhook_allow_http": True,
            "webhook_allow_private": True,
            **more,
        }
    )


@asynccontextmanager
async def running_metrics_service() -> AsyncIterator[MetricsService]:
    from tests.conftest import serve

    service = MetricsService()
    async for base_url in serve(service.app):
        service.base_url = base_url
        yield service
