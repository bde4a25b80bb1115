"""`make dev` end to end: the launcher brings the whole stack up, and Ctrl-C takes all of it down.

Runs `python -m scripts.dev` as a subprocess on free ports and a temporary data dir, as a
developer would, and checks what the run contract promises: the API and the Temporal UI
answer, the search attributes are registered, the printed demo key works, nothing outlives
the launcher, and a restart on the same data dir re-uses the demo parties.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from domain import search_attributes
from scripts.dev import READY_MARKER
from tests.conftest import TEMPORAL_BIN, free_port

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 90.0
# Three children stopped in turn, each allowed 10 s before SIGKILL, plus margin.
EXIT_TIMEOUT = 45.0
PARTY_LINE = re.compile(r"^\s+(brand|creator|agency|mediator)\s+(pty_\w+)\s+(prl_\S+)\s*$")


@dataclass
class Ports:
    api: int = field(default_factory=free_port)
    temporal: int = field(default_factory=free_port)
    ui: int = field(default_factory=free_port)


@dataclass
class Launcher:
    proc: subprocess.Popen[str]
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_banner(self) -> float:
        """Seconds from launch until the banner; fails early if the launcher exits."""
        started = time.monotonic()
        deadline = started + READY_TIMEOUT
        while not any(READY_MARKER in line for line in self.lines):
            assert self.proc.poll() is None, f"launcher exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no banner in {READY_TIMEOUT} s:\n{self.output()}"
            time.sleep(0.1)
        return time.monotonic() - started

    def parties(self) -> dict[str, tuple[str, str]]:
        """role → (id, API key), as printed in the banner."""
        found = {m[1]: (m[2], m[3]) for line in self.lines if (m := PARTY_LINE.match(line))}
        assert set(found) == {"brand", "creator", "agency", "mediator"}, self.output()
        return found

    def child_pids(self) -> list[int]:
        pids = json.loads((self.data_dir / "dev-pids.json").read_text())
        assert set(pids) == {"temporal", "worker", "api"}, pids
        return list(pids.values())

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=EXIT_TIMEOUT)


def launcher_env(ports: Ports, data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_API_PORT": str(ports.api),
        "PARLEY_TEMPORAL_PORT": str(ports.temporal),
        "PARLEY_UI_PORT": str(ports.ui),
    }
    # The embedded defaults: SQLite in the data dir, a generated admin token.
    for name in ("PARLEY_DATABASE_URL", "PARLEY_ADMIN_TOKEN", "PARLEY_TEMPORAL_ADDRESS"):
        env.pop(name, None)
    return env


@contextmanager
def launch(ports: Ports, data_dir: Path) -> Iterator[Launcher]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.dev"],
        cwd=ROOT,
        env=launcher_env(ports, data_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    launcher = Launcher(proc, data_dir)
    assert proc.stdout is not None
    # Drained continuously so the launcher never blocks on a full pipe.
    reader = threading.Thread(
        target=lambda: launcher.lines.extend(line.rstrip("\n") for line in proc.stdout),
        daemon=True,
    )
    reader.start()
    try:
        yield launcher
    finally:
        # A failed assertion must not leave a stack running for the rest of the suite.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=10)


def poll(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def http_status(url: str, **kwargs) -> int | None:
    try:
        return httpx.get(url, timeout=5, **kwargs).status_code
    except httpx.TransportError:
        return None


def running_in_groups(pgids: list[int]) -> list[str]:
    """Every live (non-zombie) process whose process group is one the launcher created.

    Each child leads its own group, so this catches the children and anything they spawned.
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited while we looked
            continue
        # Fields after "(comm)": state, ppid, pgrp; comm may itself contain spaces.
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in pgids and state != "Z":
            found.append(text[:120])
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return bool(running_in_groups([pid]))  # a zombie answers kill(0) but runs nothing


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def assert_stack_gone(launcher: Launcher, pids: list[int], ports: Ports) -> None:
    assert [pid for pid in pids if pid_alive(pid)] == [], launcher.output()
    assert running_in_groups(pids) == []
    for port in (ports.api, ports.temporal, ports.ui):
        assert not accepts_connections(port), f"port {port} still open"


def check_running_stack(launcher: Launcher, ports: Ports) -> dict[str, tuple[str, str]]:
    api = f"http://127.0.0.1:{ports.api}"
    assert http_status(f"{api}/readyz") == 200
    poll(lambda: http_status(f"http://127.0.0.1:{ports.ui}/") == 200, "the Temporal UI")

    listed = subprocess.run(
        [str(TEMPORAL_BIN), "operator", "search-attribute", "list"]
        + ["--address", f"127.0.0.1:{ports.temporal}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for key in search_attributes.ALL:
        assert key.name in listed, listed

    parties = launcher.parties()
    brand_id, brand_key = parties["brand"]
    me = httpx.get(
        f"{api}/v1/parties/me", headers={"Authorization": f"Bearer {brand_key}"}, timeout=10
    )
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["role"]) == (brand_id, "brand")
    return parties


def test_dev_stack_starts_stops_and_restarts(tmp_path: Path) -> None:
    ports = Ports()
    data_dir = tmp_path / "data"

    with launch(ports, data_dir) as first:
        took = first.wait_for_banner()
        print(f"first launch ready in {took:.1f} s")
        first_parties = check_running_stack(first, ports)
        pids = first.child_pids()
        assert first.interrupt() == 0, first.output()
    assert_stack_gone(first, pids, ports)
    assert (data_dir / "admin-token").stat().st_mode & 0o777 == 0o600

    # Same data dir and ports: the Temporal database exists now, and the demo parties too.
    with launch(ports, data_dir) as second:
        took = second.wait_for_banner()
        print(f"restart ready in {took:.1f} s")
        assert check_running_stack(second, ports) == first_parties
        pids = second.child_pids()
        assert second.interrupt() == 0, second.output()
    assert_stack_gone(second, pids, ports)


def test_dev_stack_stops_everything_when_a_child_dies(tmp_path: Path) -> None:
    ports = Ports()
    # The API cannot bind: uvicorn exits, and the launcher must take the rest down with it.
    with socket.create_server(("127.0.0.1", ports.api)), launch(ports, tmp_path / "data") as run:
        code = run.proc.wait(timeout=READY_TIMEOUT)
        assert code != 0, run.output()
        assert "api exited unexpectedly" in run.output()
        pids = run.child_pids()
    assert running_in_groups(pids) == []
    assert not accepts_connections(ports.temporal)
    assert not accepts_connections(ports.ui)
