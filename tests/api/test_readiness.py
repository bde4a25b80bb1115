"""/readyz names the failing component and recovers without restarting the API."""

from __future__ import annotations

import asyncio
import subprocess

import httpx

from api.main import create_app
from config import Settings
from tests.conftest import TEMPORAL_BIN, free_port, serve, wait_for_port


def start_dev_server(port: int, db_file) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(TEMPORAL_BIN),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--headless",
            "--db-filename",
            str(db_file),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def readyz_until(http: httpx.AsyncClient, status: int, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get("/readyz")
        if response.status_code == status:
            return response.json()
        assert asyncio.get_running_loop().time() < deadline, response.text
        await asyncio.sleep(0.2)


async def test_readyz_follows_temporal_down_and_back(tmp_path, database_url):
    port = free_port()
    server = start_dev_server(port, tmp_path / "temporal.db")
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, temporal_port=port, admin_token="x"
    )
    try:
        await wait_for_port(port)
        async for base_url in serve(create_app(settings)):
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                await readyz_until(http, 200)
                server.terminate()
                server.wait(timeout=30)
                down = await readyz_until(http, 503)
                assert down["code"] == "not_ready" and "temporal" in down["detail"]
                assert down["checks"]["database"] == "ok"
                assert down["checks"]["temporal"].startswith("unavailable")
                server = start_dev_server(port, tmp_path / "temporal.db")
                up = await readyz_until(http, 200)
                assert up["checks"] == {"database": "ok", "temporal": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_readyz_names_the_database_when_it_is_down(tmp_path, temporal_env):
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing",
        admin_token="x",
    )
    async for base_url in serve(create_app(settings, temporal=temporal_env.client)):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            body = (await http.get("/readyz")).json()
    assert body["status"] == 503 and body["detail"] == "Unavailable: database"
    assert body["checks"]["temporal"] == "ok"
