"""Disputes (SPEC §4, §8): filing through the campaign, then Updates of `dispute-{id}`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import select

from api.auth import CurrentParty, CurrentPrincipal, Principal
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.openapi import problems, register_schema
from api.pagination import DEFAULT_LIMIT, Limit, newest_snapshots
from api.resources import (
    CaseFile,
    CaseFileBundle,
    Dispute,
    Evidence,
    Offer,
    Page,
    body_of,
    offer_of,
    timeline_entry,
)
from api.resources import dispute as dispute_resource
from api.resources import evidence as evidence_resource
from api.routes.campaigns import VisibleCampaign
from api.routes.campaigns import workflow_id as campaign_workflow_id
from api.temporal import query_state, send_update
from api.views import campaign_view, dispute_context, dispute_view
from config import Settings
from db.models import (
    DisputeRecord,
    Message,
    Party,
    TimelineEvent,
    involving,
    store_evidence_text,
    utcnow,
)
from domain.contract import canonical_json, sha256_hex
from domain.dispute import (
    MAX_EVIDENCE_ITEMS,
    TEXT_KINDS,
    AcceptOffer,
    AddEvidence,
    AssignMediator,
    DisputeFiling,
    EvidenceItem,
    FileDispute,
    IssueRuling,
    MakeOffer,
    PartyAction,
    ProposeSettlement,
    RequestEvidence,
    Respond,
    Stage,
)
from domain.limits import MAX_DESCRIPTION_CHARS
from domain.parties import Role
from domain.uploads import (
    EVIDENCE_TYPES,
    UploadRefused,
    clean_filename,
    content_disposition,
    detect_evidence_type,
)
from workflows.campaign import CampaignWorkflow
from workflows.dispute import DisputeWorkflow

router = APIRouter(tags=["disputes"])


def workflow_id(dispute_id: str) -> str:
    return f"dispute-{dispute_id}"


def _is_party(principal: Principal, record: DisputeRecord) -> bool:
    return principal.id in (record.brand_id, record.creator_id, record.agency_id)


async def visible_dispute(
    dispute_id: str, principal: CurrentPrincipal, session: SessionDep
) -> DisputeRecord:
    """Parties see their disputes; mediators those that reached mediation (SPEC §1)."""
    record = await session.get(DisputeRecord, dispute_id)
    if record is not None and (
        principal.is_admin
        or _is_party(principal, record)
        or (principal.role == Role.MEDIATOR and record.mediated)
    ):
        return record
    raise ProblemError(404, "not_found", "No such dispute")


VisibleDispute = Annotated[DisputeRecord, Depends(visible_dispute)]


def reads_content(principal: Principal, record: DisputeRecord) -> bool:
    """The parties, the admin and the assigned mediator read a dispute's content; any other
    mediator only its queue summary (SPEC §1: messages and evidence once assigned)."""
    return (
        principal.is_admin
        or _is_party(principal, record)
        or (record.mediator_id is not None and principal.id == record.mediator_id)
    )


# What a mediator not assigned to a dispute sees of it: enough to pick it from the queue —
# ids, stage, amounts, deadlines — and nothing the parties wrote beyond the filing's reason.
# An allow-list, so a field added to the dispute later stays hidden until it is listed here.
QUEUE_SUMMARY_FIELDS = (
    "id",
    "campaign_id",
    "campaign_title",
    "currency",
    "stage",
    "brand_id",
    "creator_id",
    "agency_id",
    "agency_represents",
    "claimant",
    "claimant_side",
    "respondent",
    "respondent_side",
    "reason",
    "deliverables",
    "disputed_amount",
    "claim",
    "created_at",
    "deadline",
    "mediator_id",
    "mediator_overdue",
    "outcome",
    "closed_at",
)
# Evidence metadata: no text, link, quoted message, file name or description.
EVIDENCE_METADATA_FIELDS = (
    "id",
    "kind",
    "submitted_by",
    "created_at",
    "sha256",
    "content_type",
    "size",
)


def _hidden(value: Any) -> Any:
    return [] if isinstance(value, list) else "" if isinstance(value, str) else None


def queue_summary(dispute: dict[str, Any]) -> dict[str, Any]:
    """A Dispute resource as an unassigned mediator sees it, marked `redacted`: every field
    not in the allow-list emptied (null, or an empty list)."""
    summary = {
        key: value if key in QUEUE_SUMMARY_FIELDS else None if key != "evidence" else value
        for key, value in dispute.items()
    }
    for key in ("offers", "evidence_requests"):
        summary[key] = []
    summary["evidence"] = [
        {k: v if k in EVIDENCE_METADATA_FIELDS else _hidden(v) for k, v in item.items()}
        for item in dispute.get("evidence", [])
    ]
    summary["redacted"] = True
    return summary


async def require_mediator(principal: CurrentPrincipal) -> Principal:
    if principal.role != Role.MEDIATOR and not principal.is_admin:
        raise ProblemError(403, "forbidden", "only mediators may do this")
    return principal


Mediator = Annotated[Principal, Depends(require_mediator)]


async def require_mediator_party(principal: CurrentPrincipal) -> Principal:
    """Case work is signed by a mediator: the admin token assigns mediators but is nobody's
    voice on a case."""
    if principal.role != Role.MEDIATOR:
        detail = (
            "only the assigned mediator may do this; the admin assigns one with /assign"
            if principal.is_admin
            else "only mediators may do this"
        )
        raise ProblemError(403, "forbidden", detail)
    return principal


MediatorParty = Annotated[Principal, Depends(require_mediator_party)]


async def _act(
    request: Request, temporal, record: DisputeRecord, update: Callable[..., Any], arg
) -> dict:
    await send_update(temporal, workflow_id(record.id), update, arg, request=request)
    return dispute_resource(await dispute_view(request, temporal, record.id))


class DisputePage(Page[Dispute]):
    pass


# --- filing and reading ------------------------------------------------------------------


@router.post(
    "/v1/campaigns/{campaign_id}/disputes", status_code=201, response_model=Dispute, name="file"
)
async def file_dispute(
    body: DisputeFiling,
    campaign: VisibleCampaign,
    principal: CurrentParty,
    request: Request,
    response: Response,
    temporal: TemporalDep,
) -> dict[str, Any]:
    arg = FileDispute(actor_id=principal.id, **body.model_dump())
    filed = await send_update(
        temporal,
        campaign_workflow_id(campaign.id),
        CampaignWorkflow.file_dispute,
        arg,
        request=request,
    )
    handle = temporal.get_workflow_handle(workflow_id(filed["dispute_id"]))
    # Answers once the dispute has recorded itself, so lists show it straight away.
    # It carries the parties' names and the disputed work for the Temporal UI's details.
    context = await dispute_context(request, campaign.id)
    await handle.execute_update(DisputeWorkflow.filed, context, id="filed")
    response.headers["Location"] = f"/v1/disputes/{filed['dispute_id']}"
    return dispute_resource(await dispute_view(request, temporal, filed["dispute_id"]))


@router.get("/v1/disputes", response_model=DisputePage, name="list")
async def list_disputes(
    principal: CurrentPrincipal,
    session: SessionDep,
    stage: Stage | None = None,
    campaign_id: Annotated[str | None, Query(max_length=40)] = None,
    mediator_id: Annotated[
        str | None, Query(max_length=40, description="assigned to this mediator")
    ] = None,
    unassigned: Annotated[
        bool | None, Query(description="true: no mediator assigned; false: one is")
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="true: the mediator let its deadline pass")
    ] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    query = select(DisputeRecord)
    if principal.role == Role.MEDIATOR:
        query = query.where(DisputeRecord.mediated)
    elif not principal.is_admin:
        query = query.where(involving(DisputeRecord, principal.id))
    if stage:
        query = query.where(DisputeRecord.stage == stage.value)
    if campaign_id:
        query = query.where(DisputeRecord.campaign_id == campaign_id)
    if mediator_id:
        query = query.where(DisputeRecord.mediator_id == mediator_id)
    if unassigned is not None:
        assigned = DisputeRecord.mediator_id
        query = query.where(assigned.is_(None) if unassigned else assigned.is_not(None))
    listed = await newest_snapshots(session, query, DisputeRecord, cursor, limit)
    items = [dispute_resource(d) for d in listed["items"]]
    if overdue is not None:  # a flag of the snapshot, filtered on the page
        items = [d for d in items if d["mediator_overdue"] == overdue]
    if principal.role == Role.MEDIATOR:  # the queue: content only of its own disputes
        items = [d if d["mediator_id"] == principal.id else queue_summary(d) for d in items]
    return {**listed, "items": items}


@router.get("/v1/disputes/{dispute_id}", response_model=Dispute, name="get")
async def get_dispute(
    record: VisibleDispute, principal: CurrentPrincipal, request: Request, temporal: TemporalDep
) -> dict[str, Any]:
    dispute = dispute_resource(await dispute_view(request, temporal, record.id))
    return dispute if reads_content(principal, record) else queue_summary(dispute)


# --- party actions ---------------------------------------------------------------------------


# The bodies are the domain's payloads without who acts (the caller's key says it).
ResponseBody = body_of(Respond, "DisputeResponse", without=("actor_id",))
OfferCreate = body_of(MakeOffer, "OfferCreate", without=("actor_id",))


@router.post("/v1/disputes/{dispute_id}/respond", response_model=Dispute)
async def respond(
    body: ResponseBody,
    record: VisibleDispute,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = Respond(actor_id=principal.id, **body.model_dump())
    return await _act(request, temporal, record, DisputeWorkflow.respond, arg)


@router.post("/v1/disputes/{dispute_id}/offers", status_code=201, response_model=Offer)
async def make_offer(
    body: OfferCreate,
    record: VisibleDispute,
    principal: CurrentParty,
    request: Request,
    response: Response,
    temporal: TemporalDep,
) -> dict[str, Any]:
    """Answers the offer made (201, `Location` its address)."""
    arg = MakeOffer(actor_id=principal.id, **body.model_dump())
    made = await send_update(
        temporal, workflow_id(record.id), DisputeWorkflow.make_offer, arg, request=request
    )
    offer = offer_of(await dispute_view(request, temporal, record.id), made["offer_id"])
    response.headers["Location"] = f"/v1/disputes/{record.id}/offers/{made['offer_id']}"
    return offer


@router.get("/v1/disputes/{dispute_id}/offers/{offer_id}", response_model=Offer)
async def get_offer(
    offer_id: Annotated[str, Path(max_length=40)],
    record: VisibleDispute,
    principal: CurrentPrincipal,
    request: Request,
    temporal: TemporalDep,
) -> dict[str, Any]:
    offer = None
    if reads_content(principal, record):
        offer = offer_of(await dispute_view(request, temporal, record.id), offer_id)
    if offer is None:
        raise ProblemError(404, "not_found", "No such offer")
    return offer


@router.post("/v1/disputes/{dispute_id}/offers/{offer_id}/accept", response_model=Dispute)
async def accept_offer(
    offer_id: str,
    record: VisibleDispute,
    principal: CurrentParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = AcceptOffer(actor_id=principal.id, offer_id=offer_id)
    return await _act(request, temporal, record, DisputeWorkflow.accept_offer, arg)


def _party_action(path: str, update: Callable[..., Any]) -> None:
    async def action(
        record: VisibleDispute, principal: CurrentParty, request: Request, temporal: TemporalDep
    ):
        return await _act(request, temporal, record, update, PartyAction(actor_id=principal.id))

    action.__name__ = update.__name__
    router.post(
        f"/v1/disputes/{{dispute_id}}/{path}", name=update.__name__, response_model=Dispute
    )(action)


_party_action("escalate", DisputeWorkflow.escalate)
_party_action("withdraw", DisputeWorkflow.withdraw)
_party_action("proposal/accept", DisputeWorkflow.accept_proposal)
_party_action("proposal/reject", DisputeWorkflow.reject_proposal)


# --- mediator actions ------------------------------------------------------------------------


# The mediator Updates' payloads without what the API fills: the mediator from the caller's key,
# the admin's reassignment flag, and the console token (the API signs its Updates instead).
MEDIATOR_FILLED = ("mediator_id", "console_token")
AssignBody = body_of(AssignMediator, "Assignment", without=("reassign", "console_token"))
EvidenceRequestBody = body_of(RequestEvidence, "EvidenceRequestCreate", without=MEDIATOR_FILLED)
ProposalBody = body_of(ProposeSettlement, "ProposalCreate", without=MEDIATOR_FILLED)
RulingBody = body_of(IssueRuling, "RulingCreate", without=MEDIATOR_FILLED)


@router.post("/v1/disputes/{dispute_id}/assign", response_model=Dispute)
async def assign(
    body: AssignBody,
    record: VisibleDispute,
    principal: Mediator,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
):
    """A mediator assigns itself; the admin may (re)assign any mediator."""
    if not principal.is_admin and body.mediator_id != principal.id:
        raise ProblemError(403, "forbidden", "a mediator assigns only itself")
    mediator = await session.get(Party, body.mediator_id)
    if mediator is None or mediator.role != Role.MEDIATOR:
        raise ProblemError(422, "validation_error", f"mediator_id: no mediator {body.mediator_id}")
    arg = AssignMediator(mediator_id=body.mediator_id, reassign=principal.is_admin)
    return await _act(request, temporal, record, DisputeWorkflow.assign_mediator, arg)


@router.post("/v1/disputes/{dispute_id}/request-evidence", response_model=Dispute)
async def request_evidence(
    body: EvidenceRequestBody,
    record: VisibleDispute,
    principal: MediatorParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = RequestEvidence(mediator_id=principal.id, **body.model_dump())
    return await _act(request, temporal, record, DisputeWorkflow.request_evidence, arg)


@router.post("/v1/disputes/{dispute_id}/proposal", response_model=Dispute)
async def propose(
    body: ProposalBody,
    record: VisibleDispute,
    principal: MediatorParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = ProposeSettlement(mediator_id=principal.id, **body.model_dump())
    return await _act(request, temporal, record, DisputeWorkflow.propose_settlement, arg)


@router.post("/v1/disputes/{dispute_id}/ruling", response_model=Dispute)
async def rule(
    body: RulingBody,
    record: VisibleDispute,
    principal: MediatorParty,
    request: Request,
    temporal: TemporalDep,
):
    arg = IssueRuling(mediator_id=principal.id, **body.model_dump())
    return await _act(request, temporal, record, DisputeWorkflow.issue_ruling, arg)


# --- evidence --------------------------------------------------------------------------------


class EvidenceBody(BaseModel):
    """JSON evidence: a link, a text, or a reference to a campaign message."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["link", "text", "message"]
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    text: str | None = Field(default=None, max_length=50_000)
    message_id: str | None = Field(default=None, max_length=40)


def evidence_path(settings: Settings, sha256: str) -> Path:
    """Content-addressed: identical files are stored once, and the name proves the content."""
    return settings.data_dir / "evidence" / sha256[:2] / sha256


async def _store_file(request: Request, settings: Settings) -> EvidenceItem:
    # The whole body is capped by api/body_limit.py (the file's limit plus 64 KiB of fields).
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ProblemError(422, "validation_error", "file: a multipart file part is required")
    description = form.get("description")
    if not isinstance(description, str):
        description = ""
    if "\x00" in description:
        raise ProblemError(422, "validation_error", "description: may not contain NUL (U+0000)")
    if len(description) > MAX_DESCRIPTION_CHARS:
        detail = f"description: at most {MAX_DESCRIPTION_CHARS} characters"
        raise ProblemError(422, "validation_error", detail)
    data = await upload.read(settings.evidence_max_bytes + 1)
    if len(data) > settings.evidence_max_bytes:
        raise ProblemError(413, "payload_too_large", _too_large(settings))
    # The type is the bytes', checked against the declared one: never the client's word alone.
    try:
        content_type = detect_evidence_type(data, upload.content_type)
    except UploadRefused as refused:
        raise ProblemError(415, "unsupported_media_type", str(refused)) from None
    digest = hashlib.sha256(data).hexdigest()
    path = evidence_path(settings, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a reader never sees half a file
    return EvidenceItem(
        id="",
        kind="file",
        submitted_by="",
        at=utcnow(),
        description=description,
        sha256=digest,
        filename=clean_filename(upload.filename),
        content_type=content_type,
        size=len(data),
    )


def _too_large(settings: Settings) -> str:
    return f"evidence files are limited to {settings.evidence_max_bytes} bytes"


async def _store_text(session, text: str) -> str:
    """Content-addressed, as files are: the workflow gets only the digest (issue #11), and
    identical texts are stored once. Written before the Update, so every read finds it."""
    digest = await store_evidence_text(session, text)
    await session.commit()
    return digest


async def _check_room(temporal, record: DisputeRecord) -> None:
    """The workflow's cap, checked before anything is stored (the workflow checks again)."""
    state = await query_state(temporal, workflow_id(record.id), DisputeWorkflow.state)
    if state is not None and len(state.get("evidence", [])) >= MAX_EVIDENCE_ITEMS:
        detail = f"a dispute holds at most {MAX_EVIDENCE_ITEMS} evidence items"
        raise ProblemError(422, "validation_error", detail)


async def _json_item(body: EvidenceBody, record: DisputeRecord, session) -> EvidenceItem:
    text = body.text
    if body.kind == "link" and body.url:
        content = body.url
    elif body.kind == "text" and body.text:
        content = body.text
    elif body.kind == "message" and body.message_id:
        # A cited message is quoted into the evidence, hashed over its text.
        query = select(Message).where(
            Message.id == body.message_id, Message.campaign_id == record.campaign_id
        )
        message = (await session.exec(query)).first()
        if message is None:
            raise ProblemError(
                422,
                "validation_error",
                f"message_id: no message {body.message_id} in this campaign",
            )
        content = text = message.body
    else:
        field = {"link": "url", "text": "text", "message": "message_id"}[body.kind]
        raise ProblemError(422, "validation_error", f"{field}: required for {body.kind} evidence")
    # A text or quote is stored before the Update is sent; a link is its URL.
    digest = await _store_text(session, text) if body.kind in TEXT_KINDS else None
    return EvidenceItem(
        id="",
        kind=body.kind,
        submitted_by="",
        at=utcnow(),
        description=body.description,
        sha256=digest or sha256_hex(content.encode()),
        url=body.url,
        text=text,
        message_id=body.message_id,
    )


EVIDENCE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/EvidenceCreate"}},
        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/EvidenceUpload"}},
    },
}
register_schema("EvidenceCreate", EvidenceBody)
register_schema(
    "EvidenceUpload",
    {
        "type": "object",
        "title": "EvidenceUpload",
        "description": "A file (its type checked against the allow-list) and what it shows.",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "description": {"type": "string", "maxLength": MAX_DESCRIPTION_CHARS},
        },
        "required": ["file"],
    },
)


@router.post(
    "/v1/disputes/{dispute_id}/evidence",
    status_code=201,
    response_model=Evidence,
    responses=problems(413, 415),
    openapi_extra={"requestBody": EVIDENCE_BODY},
)
async def add_evidence(
    record: VisibleDispute,
    principal: CurrentParty,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    """Multipart `file` + `description`, or JSON `{kind: link|text|message, ...}`."""
    if not _is_party(principal, record) and principal.id != record.mediator_id:
        raise ProblemError(
            403, "forbidden", "only the parties and the assigned mediator add evidence"
        )
    await _check_room(temporal, record)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        item = await _store_file(request, settings)
    else:
        try:
            body = EvidenceBody.model_validate_json(await request.body())
        except ValidationError as err:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise ProblemError(422, "validation_error", detail) from None
        item = await _json_item(body, record, session)
    item.id = "evd_" + secrets.token_hex(8)
    item.submitted_by = principal.id
    # The text is stored (by its sha256); the workflow and its history get the metadata only.
    arg = AddEvidence(actor_id=principal.id, item=item.model_copy(update={"text": None}))
    await send_update(
        temporal, workflow_id(record.id), DisputeWorkflow.add_evidence, arg, request=request
    )
    response.headers["Location"] = f"/v1/disputes/{record.id}/evidence/{item.id}"
    return evidence_resource(item.model_dump(mode="json"))


JSON_TYPE = "application/json"


@router.get(
    "/v1/disputes/{dispute_id}/evidence/{evidence_id}",
    response_model=Evidence,
    responses={
        200: {
            "description": "A file item's bytes as stored, as an attachment with the file's "
            "own type (`X-Content-SHA256` its digest); a link or text item answers its "
            "`Evidence` record as JSON. The bytes are listed first, so a generated client "
            "reads this operation as a download (the records are in the dispute's `evidence`).",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                # application/json stays the record's (a JSON file is served as one too).
                for media in ("application/octet-stream", *sorted(EVIDENCE_TYPES - {JSON_TYPE}))
            },
        }
    },
)
async def get_evidence(
    evidence_id: str,
    record: VisibleDispute,
    principal: CurrentPrincipal,
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
):
    """Downloads only for the parties and the assigned mediator."""
    if not (
        principal.is_admin or _is_party(principal, record) or principal.id == record.mediator_id
    ):
        raise ProblemError(404, "not_found", "No such evidence")
    state = await dispute_view(request, temporal, record.id)  # texts put back
    item = next((e for e in state.get("evidence", []) if e["id"] == evidence_id), None)
    if item is None:
        raise ProblemError(404, "not_found", "No such evidence")
    if item["kind"] != "file":
        return evidence_resource(item)
    return evidence_file_response(settings, item)


def evidence_file_response(settings: Settings, item: dict[str, Any]) -> FileResponse:
    """A stored evidence file as a download (here and in api/routes/console.py)."""
    # Attachment + nosniff: a browser saves the file and never renders or re-types it.
    return FileResponse(
        evidence_path(settings, item["sha256"]),
        media_type=item["content_type"],
        headers={
            "X-Content-SHA256": item["sha256"],
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": content_disposition(item["filename"]),
        },
    )


# --- case file -------------------------------------------------------------------------------


@router.get("/v1/disputes/{dispute_id}/case-file", response_model=CaseFile)
async def case_file(
    record: VisibleDispute,
    principal: CurrentPrincipal,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    """One JSON bundle per dispute with a sha256 digest over its canonical form (SPEC §4).

    The parties', the admin's and the assigned mediator's: another mediator sees the dispute
    in its queue (so 403, not 404) but reads its content only once assigned (SPEC §1).
    """
    if not reads_content(principal, record):
        raise ProblemError(
            403, "forbidden", "the case file is for the parties and the assigned mediator"
        )
    # Evidence texts put back; the dispute as its resource (flat splits, `created_at`).
    dispute = dispute_resource(await dispute_view(request, temporal, record.id))
    campaign = await campaign_view(request, temporal, record.campaign_id)
    events = (
        await session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.source == record.id)
            .order_by(TimelineEvent.seq)
        )
    ).all()
    disputed = set(dispute["deliverables"])
    bundle = {
        "dispute_id": record.id,
        "campaign": {
            "id": campaign["id"],
            "title": campaign["title"],
            "currency": campaign["currency"],
            "brand_id": campaign["brand_id"],
            "creator_id": campaign["creator_id"],
            "agency_id": campaign["agency_id"],
            "contract_hash": campaign["contract_hash"],
            "terms": campaign["terms"],
        },
        "deliverables": [d for d in campaign["deliverables"] if d["index"] in disputed],
        "claimant": dispute["claimant"],
        "reason": dispute["reason"],
        "statement": dispute["statement"],
        "claim": dispute["claim"],
        "disputed_amount": dispute["disputed_amount"],
        "response": dispute["response"],
        "evidence": dispute["evidence"],
        "messages": [e for e in dispute["evidence"] if e["kind"] == "message"],
        "offers": dispute["offers"],
        "proposal": dispute["proposal"],
        "ruling": dispute["ruling"],
        "outcome": dispute["outcome"],
        "timeline": [timeline_entry(e) for e in events],
    }
    # Written as the response writes it, so the digest covers exactly what the client receives.
    bundle = CaseFileBundle.model_validate(bundle).model_dump(mode="json")
    return {"case_file": bundle, "sha256": sha256_hex(canonical_json(bundle))}
