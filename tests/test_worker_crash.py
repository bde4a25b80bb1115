"""A real worker process SIGKILLed between the rail call and the ledger write."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from sqlmodel import select

from db.models import LedgerEntry, SandboxMovement
from domain.campaign import AcceptCampaign, FundRequest
from tests.workflows.test_campaign import BRAND, CREATOR, new_campaign
from workflows.campaign import CampaignWorkflow


def worker_process(settings, target: str, **extra_env) -> subprocess.Popen:
    host, port = target.rsplit(":", 1)
    env = {
        **os.environ,
        "PARLEY_TEMPORAL_HOST": host,
        "PARLEY_TEMPORAL_PORT": port,
        "PARLEY_TASK_QUEUE": settings.task_queue,
        "PARLEY_DATABASE_URL": settings.db_url,
        "PARLEY_DATA_DIR": str(settings.data_dir),
        # The worker checks the Updates' signatures with the key the test client signs with.
        "PARLEY_ADMIN_TOKEN": settings.admin_token,
        **extra_env,
    }
    return subprocess.Popen([sys.executable, "worker.py"], env=env)


async def test_crash_after_rail_call_moves_money_exactly_once(temporal_env, settings, sessionmaker):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = temporal_env.client.service_client.config.target_host
    new = new_campaign(amounts=(12_000,))
    fund_key = f"{new.id}:fund"
    crashing = worker_process(settings, target, PARLEY_FAULT_KILL_AFTER_RAIL=fund_key)
    restarted = None
    try:
        handle = await temporal_env.client.start_workflow(
            CampaignWorkflow.run, new, id=f"campaign-{new.id}", task_queue=settings.task_queue
        )
        contract = (await handle.query(CampaignWorkflow.state))["contract_hash"]
        await handle.execute_update(
            CampaignWorkflow.accept, AcceptCampaign(actor_id=CREATOR, contract_hash=contract)
        )
        funding = asyncio.create_task(
            handle.execute_update(CampaignWorkflow.fund, FundRequest(actor_id=BRAND))
        )
        exit_code = await asyncio.to_thread(crashing.wait, 60)
        assert exit_code == -signal.SIGKILL

        async with sessionmaker() as session:
            entry = (
                await session.exec(
                    select(LedgerEntry).where(LedgerEntry.idempotency_key == fund_key)
                )
            ).one()
            booked = (
                await session.exec(
                    select(SandboxMovement).where(SandboxMovement.idempotency_key == fund_key)
                )
            ).all()
        assert entry.state == "pending" and len(booked) == 1  # the rail moved, the ledger not yet

        restarted = worker_process(settings, target)
        await asyncio.wait_for(funding, 120)
        state = await handle.query(CampaignWorkflow.state)
        assert state["status"] == "active" and state["escrow"]["funded"] == 12_000

        async with sessionmaker() as session:
            entries = (
                await session.exec(select(LedgerEntry).where(LedgerEntry.campaign_id == new.id))
            ).all()
            booked = (
                await session.exec(
                    select(SandboxMovement).where(SandboxMovement.idempotency_key == fund_key)
                )
            ).all()
        assert [(e.idempotency_key, e.state) for e in entries] == [(fund_key, "succeeded")]
        assert len(booked) == 1 and entries[0].rail_reference == booked[0].reference
    finally:
        for process in (crashing, restarted):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
