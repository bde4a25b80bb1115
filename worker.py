"""The Temporal worker: every workflow and activity of Parley on one task queue.

`python worker.py` connects from config and runs until SIGINT/SIGTERM, then finishes the
activities in flight (up to the graceful timeout) before exiting.
"""

from __future__ import annotations

import asyncio
import compileall
import dataclasses
import gc
import logging
import os
import signal
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import build_activities
from api.observability import install_tracing, traced
from config import Settings, connect_temporal, get_settings
from db.engine import make_engine, make_sessionmaker
from domain.errors import RefusalFailureConverter
from workflows import WORKFLOWS
from workflows.authority import AuthorityInterceptor
from workflows.console import ConsoleDetailsInterceptor, EvidenceLinks
from workflows.reconciliation import SCHEDULE_ID, ReconciliationWorkflow
from workflows.repeats import RepeatedUpdates

log = logging.getLogger("parley.worker")


def cache_workflow_bytecode() -> None:
    """Compiled workflow modules on disk before the first workflow runs.

    The sandbox imports a workflow's modules afresh for every workflow instance it creates (a
    new campaign, or one evicted from the cache and woken by a deadline). Without cached
    bytecode — PYTHONDONTWRITEBYTECODE, as this machine and the Dockerfile set it — every such
    import compiles the source again: 80 % of the worker's CPU at 5,000 open campaigns
    (issue #13, README "Scale"). When writing beside the source is off, the bytecode goes to a
    cache directory of its own (`sys.pycache_prefix`), never into the source tree."""
    if sys.dont_write_bytecode and sys.pycache_prefix is None:
        sys.pycache_prefix = str(Path(tempfile.gettempdir()) / "parley-pycache")
    compileall.compile_dir(Path(__file__).parent / "workflows", quiet=1)


def build_worker(
    client: Client,
    settings: Settings,
    sessionmaker,
    task_queue: str | None = None,
    rail=None,
) -> Worker:
    cache_workflow_bytecode()
    # Whoever made the client, the worker's refusals go out as one sentence (no traceback).
    converter = dataclasses.replace(
        client.data_converter, failure_converter_class=RefusalFailureConverter
    )
    client = Client(**{**client.config(), "data_converter": converter})
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings, sessionmaker, rail),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        # Who sent it first; then a repeat from an earlier run gets that run's answer.
        interceptors=[
            AuthorityInterceptor(settings.authority_key),
            RepeatedUpdates(),
            ConsoleDetailsInterceptor(
                EvidenceLinks(settings.authority_key, settings.console_url)
                if settings.authority_key
                else None
            ),
        ],
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_cached_workflows=settings.worker_max_cached_workflows,
        # The tracing interceptor (api.observability.traced) opens spans from workflow code:
        # OpenTelemetry's global state must be the process's, not a sandboxed copy.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("opentelemetry")
        ),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> None:
    """The reconciliation sweep every `reconciliation_every_minutes`: created by the first
    worker to start, left alone by the others (and by restarts)."""
    if settings.reconciliation_every_minutes <= 0:
        return
    every = timedelta(minutes=settings.reconciliation_every_minutes)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run, id="reconciliation", task_queue=settings.task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        log.info("reconciliation scheduled every %s", every)
    except ScheduleAlreadyRunningError:
        pass


def install_runtime(settings: Settings) -> None:
    """The process's one Temporal Runtime, before any client: with `worker_metrics_port` set,
    it serves the SDK's metrics (task slots, polls, schedule-to-start latencies, …) at
    `/metrics` on that port."""
    if settings.worker_metrics_port is None:
        return
    address = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
    telemetry = TelemetryConfig(metrics=PrometheusConfig(bind_address=address))
    Runtime.set_default(Runtime(telemetry=telemetry), error_if_already_set=True)
    log.info("Temporal SDK metrics on http://%s/metrics", address)


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    install_runtime(settings)
    client = await connect_temporal(settings)
    if settings.otlp_endpoint:  # the spans of workflow code and activities leave over OTLP
        install_tracing("parley-worker")
        client = traced(client)
    engine = make_engine(settings.db_url)
    try:
        await ensure_reconciliation_schedule(client, settings)
        async with build_worker(client, settings, make_sessionmaker(engine)):
            # What is loaded by now (modules, the SDK, the validated workflow definitions)
            # lives as long as the process: kept out of every full garbage collection's walk,
            # a pause in which no workflow task runs (config.worker_max_cached_workflows).
            gc.freeze()
            log.info("worker polling %s on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()
            log.info("shutting down: finishing activities in flight")
    finally:
        await engine.dispose()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    asyncio.run(run(settings))
    if settings.worker_metrics_port is not None:
        # Shut down cleanly above (activities drained, database closed). The SDK runtime
        # serving Prometheus can abort while the interpreter tears it down (exit −6 seen in
        # tests), so the process leaves without that teardown, its output flushed first.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
