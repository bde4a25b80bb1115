"""`python worker.py` with PARLEY_WORKER_METRICS_PORT serves the Temporal SDK's metrics."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import free_port
from tests.test_worker_crash import worker_process


async def scrape_until(url: str, wanted: str, timeout: float = 60) -> str:
    """The exposition once it shows `wanted` (the worker needs a moment to poll)."""
    deadline = asyncio.get_running_loop().time() + timeout
    text = ""
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                response = await http.get(url)
                if response.status_code == 200:
                    text = response.text
                    if wanted in text:
                        return text
            except httpx.TransportError:  # not listening yet
                pass
            assert asyncio.get_running_loop().time() < deadline, text[-2000:] or "no answer"
            await asyncio.sleep(0.2)


async def test_worker_serves_sdk_metrics_on_its_own_port(temporal_env, settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = temporal_env.client.service_client.config.target_host
    port = free_port()
    worker = worker_process(settings, target, PARLEY_WORKER_METRICS_PORT=str(port))
    try:
        text = await scrape_until(
            f"http://127.0.0.1:{port}/metrics", "temporal_worker_task_slots_available"
        )
        # Labelled with this worker's task queue, from the running Worker (not a stub).
        slots = [
            line
            for line in text.splitlines()
            if line.startswith("temporal_worker_task_slots_available{")
        ]
        assert any(f'task_queue="{settings.task_queue}"' in line for line in slots), slots
        assert "temporal_request" in text  # the client's calls to the server are counted
    finally:
        worker.terminate()
        assert await asyncio.to_thread(worker.wait, 30) == 0
