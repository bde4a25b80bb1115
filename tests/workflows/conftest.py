"""A worker on the time-skipping server for each workflow test."""

from __future__ import annotations

import pytest

from worker import build_worker


@pytest.fixture
async def env(time_env, settings, sessionmaker, task_queue):
    async with build_worker(time_env.client, settings, sessionmaker, task_queue):
        yield time_env
