"""Business refusals are one log line each, with no traceback (issue #14, item 8).

A declined card (402) and a refused state change (409) cross the API, the workflow's Update
and — for the card — the payment activity on the in-process worker; each is a normal answer,
not an incident. Besides the access log's line for the request, the declined card logs one
line (the rail's word, without exception info) and the 409 nothing at all: no traceback from
the activity, the workflow, the Update or the API's error mapping.
"""

from __future__ import annotations

import logging

import pytest

from tests.api.test_campaigns import create_and_accept, ok
from tests.api.test_parties import assert_problem

DECLINED_CARD = "pm_card_visa_chargeDeclined"


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # The test's own client (httpx) logs each request it sends; that is not the server.
    return [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]


async def test_a_declined_card_and_a_wrong_state_log_one_line_each(api, trio, caplog):
    brand, creator, _ = trio
    cid = (await create_and_accept(brand, creator))["id"]
    caplog.set_level(logging.INFO)  # what `make dev` and worker.py log

    caplog.clear()
    declined = await brand.client.post(
        f"/v1/campaigns/{cid}/fund", json={"payment_method": DECLINED_CARD}
    )
    assert_problem(declined, 402, "payment_failed")
    logged = lines(caplog)
    assert len(logged) == 1, [(r.name, r.levelname, r.getMessage()) for r in logged]
    assert "declined" in logged[0].getMessage()
    assert logged[0].exc_info is None and logged[0].levelno <= logging.WARNING

    await ok(await brand.client.post(f"/v1/campaigns/{cid}/fund", json={}))
    caplog.clear()
    again = await brand.client.post(f"/v1/campaigns/{cid}/fund", json={})
    assert_problem(again, 409, "invalid_state")
    # Refused by the Update's validator before anything ran: nothing beyond the access log's
    # line for the request (uvicorn's, switched off by these tests' server).
    assert lines(caplog) == []
