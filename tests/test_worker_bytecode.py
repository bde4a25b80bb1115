"""The worker leaves compiled workflow modules where the sandbox's imports find them (issue
#13): the sandbox imports a workflow's modules for every instance it creates, and without
cached bytecode each import compiled the source again (80 % of the worker's CPU at scale)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib.util
from pathlib import Path
from worker import cache_workflow_bytecode
cache_workflow_bytecode()
for name in ("campaign", "dispute", "records", "timers"):
    print(importlib.util.cache_from_source(str(Path(f"workflows/{name}.py").resolve())))
"""


def test_workflow_bytecode_is_cached_outside_the_tree_when_writing_is_off(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    paths = [Path(line) for line in run.stdout.split()]
    assert len(paths) == 4
    for path in paths:
        assert path.is_file(), path
        assert tmp_path in path.parents  # in the cache directory, not beside the source
        assert path.read_bytes()[:4] == importlib.util.MAGIC_NUMBER
