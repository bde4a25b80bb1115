"""The OpenAPI document is a contract a generated client can use (issue #14).

A client is generated during the test by openapi-python-client (pinned in the `test` extras)
from the running app's `/openapi.json` and drives a campaign with typed models — create,
accept, fund with no body, submit, approve — then a dispute with a JSON and a multipart
evidence item (the file downloaded back as bytes), an offer and its acceptance; a 402, a 409
and a 422 parse into `Problem`.
The document itself: every operation documents its problems as `application/problem+json`,
no success body is `{}` or a free-form object, and `/docs` renders from the app's own assets.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from api.errors import PROBLEM_JSON
from api.observability import JsonFormatter, party_id, request_id, workflow_id
from tests.api.test_campaigns import FAST, ok

PACKAGE = "parley_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
TWO_POSTS = (10_000, 5_000)
PROOF = b"%PDF-1.4 proof"


def generate_client(document: dict, where: Path):
    """Writes the document, runs the generator (no post-hooks: nothing else on PATH is
    needed) and imports the package it wrote."""
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    config = where / "config.json"
    config.write_text(json.dumps({"post_hooks": [], "project_name_override": PACKAGE}))
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(where / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Every schema and operation made it into the client (no "skipping" warnings).
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(where))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE)


def op(group: str, name: str):
    return importlib.import_module(f"{PACKAGE}.api.{group}.{group}_{name}")


@pytest.fixture
async def generated(api, tmp_path):
    document = await ok(await api.http.get("/openapi.json"))
    package = await asyncio.to_thread(generate_client, document, tmp_path)
    yield package
    sys.path.remove(str(tmp_path))


async def test_a_generated_client_drives_a_campaign_and_a_dispute(
    api, make_party, generated, caplog
):
    caplog.set_level(logging.INFO)
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    brand_party = await make_party("brand")
    creator_party = await make_party("creator", stripe_account="acct_creator1")

    def client_for(party):
        return generated.AuthenticatedClient(base_url=api.base_url, token=party.api_key)

    brand, creator = client_for(brand_party), client_for(creator_party)
    body = models.CampaignCreate.from_dict(
        {
            "title": "Spring launch",
            "brief": "Two posts",
            "creator_id": creator_party.id,
            "currency": "eur",
            "deliverables": [
                {"title": f"Post {i}", "amount": amount} for i, amount in enumerate(TWO_POSTS)
            ],
            "terms": {**FAST, "review_window": "PT30S"},
        }
    )
    created = await op("campaigns", "create").asyncio_detailed(client=brand, body=body)
    assert created.status_code == 201, created.content
    campaign = created.parsed
    assert isinstance(campaign, models.Campaign)
    assert created.headers["location"] == f"/v1/campaigns/{campaign.id}"
    assert campaign.status == models.CampaignStatus.AWAITING_ACCEPTANCE
    assert campaign.budget == sum(TWO_POSTS)

    # 422 (a contract hash is 64 hex digits) and 409 (not the hash the creator read).
    accept = op("campaigns", "accept")
    refused = await accept.asyncio_detailed(
        campaign.id, client=creator, body=models.ContractAcceptance(contract_hash="short")
    )
    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.code == "validation_error"
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    changed = await accept.asyncio_detailed(
        campaign.id, client=creator, body=models.ContractAcceptance(contract_hash="0" * 64)
    )
    assert isinstance(changed.parsed, models.Problem)
    assert (changed.status_code, changed.parsed.code) == (409, "contract_changed")
    accepted = await accept.asyncio(
        campaign.id,
        client=creator,
        body=models.ContractAcceptance(contract_hash=campaign.contract_hash),
    )
    assert accepted.status == models.CampaignStatus.AWAITING_FUNDING

    # 402: a declined card parses into a Problem; the campaign waits for funding still.
    declined = await op("campaigns", "fund").asyncio_detailed(
        campaign.id,
        client=brand,
        body=models.Funding(payment_method="pm_card_visa_chargeDeclined"),
    )
    assert declined.status_code == 402
    assert isinstance(declined.parsed, models.Problem)
    assert declined.parsed.code == "payment_failed"
    # A business refusal is one log line, with no traceback (the worker runs in-process).
    declines = [r for r in caplog.records if "declined" in r.getMessage()]
    assert [r.name for r in declines] == ["parley.payments"], [r.getMessage() for r in declines]
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING]
    # Fund with no body at all (the default card).
    funded = await op("campaigns", "fund").asyncio(campaign.id, client=brand)
    assert isinstance(funded, models.Campaign), funded
    assert funded.status == models.CampaignStatus.ACTIVE
    assert funded.escrow.held == sum(TWO_POSTS)

    submitted = await op("campaigns", "submit").asyncio(
        campaign.id, 0, client=creator, body=models.Work(url="https://instagram.com/p/1")
    )
    assert submitted.deliverables[0].status == models.DeliverableStatus.SUBMITTED
    assert submitted.deliverables[0].submissions[0].url == "https://instagram.com/p/1"
    approved = await op("campaigns", "approve").asyncio(campaign.id, 0, client=brand)
    assert approved.deliverables[0].status == models.DeliverableStatus.APPROVED
    assert approved.deliverables[0].approved_by == "brand"

    # A dispute over the second post, with evidence in both forms, settled by an offer.
    filing = models.DisputeFiling.from_dict(
        {
            "reason": "not posted",
            "deliverables": [1],
            "claim": {"release_to_creator": 0, "refund_to_brand": TWO_POSTS[1]},
            "statement": "nothing went live",
        }
    )
    filed = await op("disputes", "file").asyncio_detailed(campaign.id, client=brand, body=filing)
    assert filed.status_code == 201, filed.content
    dispute = filed.parsed
    assert isinstance(dispute, models.Dispute)
    assert filed.headers["location"] == f"/v1/disputes/{dispute.id}"
    assert (dispute.claimant, dispute.respondent) == (brand_party.id, creator_party.id)
    assert dispute.disputed_amount == TWO_POSTS[1]

    add_evidence = op("disputes", "add_evidence")
    text = await add_evidence.asyncio_detailed(
        dispute.id,
        client=brand,
        body=models.EvidenceCreate(kind=models.EvidenceCreateKind.TEXT, text="the brief"),
    )
    assert text.status_code == 201, text.content
    assert text.parsed.text == "the brief"
    upload = models.EvidenceUpload(
        file=types.File(payload=io.BytesIO(PROOF), file_name="proof.pdf"),
        description="the invoice",
    )
    uploaded = await add_evidence.asyncio_detailed(dispute.id, client=brand, body=upload)
    assert uploaded.status_code == 201, uploaded.content
    item = uploaded.parsed
    assert isinstance(item, models.Evidence)
    assert (item.kind, item.filename, item.description) == (
        models.EvidenceKind.FILE,
        "proof.pdf",
        "the invoice",
    )
    assert uploaded.headers["location"] == f"/v1/disputes/{dispute.id}/evidence/{item.id}"
    # The download reads as a file (its bytes are the operation's first media type), and the
    # other side gets back exactly what was uploaded.
    download = await op("disputes", "get_evidence").asyncio_detailed(
        dispute.id, item.id, client=creator
    )
    assert download.status_code == 200, download.content
    assert isinstance(download.parsed, types.File), download.parsed
    assert download.parsed.payload.read() == PROOF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-sha256"] == item.sha256 == hashlib.sha256(PROOF).hexdigest()

    await op("disputes", "respond").asyncio(
        dispute.id, client=creator, body=models.DisputeResponse(statement="it did")
    )
    offered = await op("disputes", "make_offer").asyncio_detailed(
        dispute.id,
        client=brand,
        body=models.OfferCreate(release_to_creator=2_500, refund_to_brand=2_500),
    )
    assert offered.status_code == 201, offered.content
    offer = offered.parsed
    assert isinstance(offer, models.Offer)
    assert (offer.release_to_creator, offer.refund_to_brand, offer.by) == (
        2_500,
        2_500,
        brand_party.id,
    )
    assert offered.headers["location"] == f"/v1/disputes/{dispute.id}/offers/{offer.id}"
    fetched = await op("disputes", "get_offer").asyncio(dispute.id, offer.id, client=creator)
    assert fetched == offer
    resolved = await op("disputes", "accept_offer").asyncio(dispute.id, offer.id, client=creator)
    assert resolved.stage == models.Stage.RESOLVED
    assert resolved.outcome.by == models.OutcomeBy.AGREEMENT
    assert resolved.created_at.tzinfo is not None  # RFC 3339 with its offset

    timeline = await op("campaigns", "timeline").asyncio(campaign.id, client=brand)
    assert "dispute.resolved" in [entry.type_ for entry in timeline.items]
    assert all(entry.created_at.tzinfo is not None for entry in timeline.items)
    me = await op("parties", "get_me").asyncio(client=brand)
    assert me.created_at.tzinfo is not None

    # Operators: the money the rail moved, and the requests by route template and status.
    metrics = await api.http.get("/metrics")
    assert metrics.status_code == 200
    funded_total = re.search(
        r'^parley_money_moved_minor_units\{currency="eur",kind="fund"\} ([0-9.e+]+)$',
        metrics.text,
        re.M,
    )
    assert funded_total and float(funded_total.group(1)) >= sum(TWO_POSTS), metrics.text
    declined_line = (
        'parley_http_requests_total{method="POST",'
        'route="/v1/campaigns/{campaign_id}/fund",status="402"} 1.0'
    )
    assert declined_line in metrics.text
    assert created.headers["x-request-id"]


async def test_every_operation_documents_its_problems_and_typed_bodies(api):
    document = await ok(await api.http.get("/openapi.json"))
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A party's API key, or the admin token",
    }
    operation_ids = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert re.fullmatch(r"[a-z_]+", operation["operationId"]), where
            operation_ids.add(operation["operationId"])
            problems = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            assert problems, f"{where} documents no problem"
            for status, response in problems.items():
                assert response["content"] == {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, f"{where} {status}"
            successes = {s: r for s, r in operation["responses"].items() if int(s) < 400}
            assert successes, where
            for status, response in successes.items():
                for media_type, media in response.get("content", {}).items():
                    schema = media.get("schema")
                    assert schema, f"{where} {status} {media_type}: no schema"
                    if "$ref" in schema:
                        continue
                    assert schema.get("type") == "string", f"{where} {status}: {schema}"
            if method == "post":
                assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
                assert 422 in {int(s) for s in problems}
    assert {"campaigns_accept", "campaigns_fund", "disputes_add_evidence"} <= operation_ids
    # Every response model is an object with its fields spelled out.
    for name, schema in schemas.items():
        if schema.get("type") == "object" and name not in ("EvidenceUpload",):
            assert schema.get("properties"), name
    evidence = document["paths"]["/v1/disputes/{dispute_id}/evidence"]["post"]
    assert set(evidence["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    stream = document["paths"]["/v1/campaigns/{campaign_id}/messages/stream"]["get"]
    assert set(stream["responses"]["200"]["content"]) == {"text/event-stream"}
    download = document["paths"]["/v1/disputes/{dispute_id}/evidence/{evidence_id}"]["get"]
    # Bytes first (a generated client types a response by its first known media type), each
    # evidence file type documented, the JSON record of a link or text after them.
    content = download["responses"]["200"]["content"]
    assert next(iter(content)) == "application/octet-stream"
    assert {"application/pdf", "image/png", "text/plain"} <= set(content)
    assert content["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Evidence"}
    fund = document["paths"]["/v1/campaigns/{campaign_id}/fund"]["post"]
    assert fund["requestBody"]["required"] is False
    assert "402" in fund["responses"]


async def test_unknown_query_parameters_are_refused(api, make_party):
    brand = await make_party("brand")
    response = await brand.client.get("/v1/campaigns", params={"statuz": "active"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["errors"][0]["loc"] == ["query", "statuz"]
    assert (await brand.client.get("/v1/campaigns", params={"status": "active"})).status_code == 200


async def test_docs_render_from_the_apps_own_assets(api):
    for page in ("/docs", "/redoc"):
        response = await api.http.get(page)
        assert response.status_code == 200, page
        html = response.text
        # Nothing from another host: every script and stylesheet is the app's.
        assert not re.search(r"""(src|href)=["']https?://""", html), html
        assets = re.findall(r"""(?:src|href)=["'](/docs/assets/[^"']+)["']""", html)
        assert assets, html
        for asset in assets:
            served = await api.http.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1000, asset
    swagger = (await api.http.get("/docs")).text
    assert "/openapi.json" in swagger


def test_json_log_lines_carry_the_request_party_and_workflow():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("parley.test_json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    tokens = [
        (var, var.set(value))
        for var, value in ((request_id, "req-1"), (party_id, "pty_1"), (workflow_id, "cmp-1"))
    ]
    try:
        logger.warning("payment declined: %s", "card")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.warning("refused", exc_info=True)
    finally:
        for var, token in tokens:
            var.reset(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "payment declined: card"
    assert (first["request_id"], first["party_id"], first["workflow_id"]) == (
        "req-1",
        "pty_1",
        "cmp-1",
    )
    assert first["time"].endswith("Z") and first["level"] == "warning"
    assert second["error"] == "ValueError: boom" and "traceback" not in second


async def test_request_ids_are_answered(api):
    response = await api.http.get("/healthz", headers={"X-Request-ID": "trace-me"})
    assert response.headers["x-request-id"] == "trace-me"
    assert (await api.http.get("/healthz")).headers["x-request-id"]


async def test_a_party_updates_itself_and_the_admin_lists_parties(api, make_party):
    brand = await make_party("brand")
    changed = await ok(await brand.client.patch("/v1/parties/me", json={"email": "new@x.org"}))
    assert changed["email"] == "new@x.org" and changed["webhook_secret"] is None
    refused = await brand.client.patch("/v1/parties/me", json={"email": "not-an-email"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    # A first webhook URL gets a secret, once; rotating answers a new one.
    hooked = await ok(
        await brand.client.patch("/v1/parties/me", json={"webhook_url": "https://hooks.example/p"})
    )
    assert hooked["webhook_url"] == "https://hooks.example/p"
    assert hooked["webhook_secret"].startswith("whsec_")
    rotated = await ok(await brand.client.post("/v1/parties/me/webhook-secret"))
    assert rotated["webhook_secret"].startswith("whsec_")
    assert rotated["webhook_secret"] != hooked["webhook_secret"]
    me = await ok(await brand.client.get("/v1/parties/me"))
    assert "webhook_secret" not in me  # shown once, never read back

    listed = await ok(await api.http.get("/v1/parties", params={"role": "brand", "limit": 100}))
    assert brand.id in [p["id"] for p in listed["items"]]
    assert {p["role"] for p in listed["items"]} == {"brand"}
    assert (await brand.client.get("/v1/parties")).status_code == 403
