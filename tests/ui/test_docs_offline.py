"""`/docs` and `/redoc` render in chromium with the network blocked (issue #14).

tests/ui/docs.mjs drives Debian's chromium with playwright-core (the harness of
test_mediator_console.py) against the app over real HTTP; its context refuses every request
to another host, so an asset fetched from a CDN would leave the pages blank.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.ui.test_mediator_console import CHROMIUM, ROOT, STEP_TIMEOUT, require_browser

SCRIPT = Path(__file__).with_name("docs.mjs")


async def test_docs_and_redoc_render_offline_with_the_authorize_button(api):
    node = require_browser()
    config = {"base_url": api.base_url, "chromium": str(CHROMIUM)}
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        json.dumps(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 2 * STEP_TIMEOUT)
    assert proc.returncode == 0, err.decode(errors="replace")
    answer = json.loads(out.decode().strip().splitlines()[-1])
    assert answer["ok"], answer
    assert answer["refused"] == [], answer["refused"]  # nothing wanted the internet
    docs, redoc = answer["docs"], answer["redoc"]
    assert docs["title"].startswith("Parley"), docs
    assert docs["authorize"] and docs["dialog"], docs
    assert docs["operations"] > 40, docs  # the whole document, not an error page
    assert redoc["title"].startswith("Parley"), redoc
    assert redoc["operations"] > 0, redoc
    assert answer["errors"] == [], answer["errors"]
