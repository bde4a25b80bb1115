"""Payment-rail events (SPEC §7): Stripe's signed webhooks, each handled once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import stripe
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.openapi import problems
from api.resources import WebhookReceipt
from api.temporal import send_update
from db.models import CampaignRecord, LedgerEntry, Party, StripeEvent, involving
from domain.campaign import CardDispute, FundingSettled, RetryPayouts
from workflows.campaign import CampaignWorkflow

log = logging.getLogger("parley.webhooks")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TOLERANCE_SECONDS = 300


class RailObject(BaseModel):
    """The fields of a Stripe object we read; anything else is carried along unread."""

    model_config = ConfigDict(extra="allow")
    id: str | None = Field(default=None, max_length=255)
    payment_intent: str | None = Field(default=None, max_length=255)
    reason: str | None = Field(default=None, max_length=255)
    status: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] | None = None
    payouts_enabled: bool | None = None  # an Account (`account.updated`)
    amount: int | None = Field(default=None, ge=0)  # a Dispute's


class RailEventData(BaseModel):
    object: RailObject


class RailEvent(BaseModel):
    """A signed Stripe event, checked before anything acts on it: a malformed one is a 400."""

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=255)
    data: RailEventData


def _signed_at(header: str) -> int | None:
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return None


async def _campaign_of_payment(session, payment_intent: str | None) -> str | None:
    """The campaign whose funding charge this PaymentIntent is, from our ledger."""
    if not payment_intent:
        return None
    entry = (
        await session.exec(
            select(LedgerEntry).where(
                LedgerEntry.kind == "fund", LedgerEntry.rail_reference == payment_intent
            )
        )
    ).first()
    return entry.campaign_id if entry else None


@router.post("/stripe", response_model=WebhookReceipt, responses=problems(400))
async def stripe_webhook(
    request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> dict[str, Any]:
    if not settings.stripe_webhook_secret:
        raise ProblemError(503, "webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set")
    payload = await request.body()
    header = request.headers.get("stripe-signature", "")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), header, settings.stripe_webhook_secret, TOLERANCE_SECONDS
        )
    except (UnicodeDecodeError, stripe.SignatureVerificationError) as err:
        raise ProblemError(400, "invalid_signature", f"Stripe signature rejected: {err}") from None
    # Stripe's library checks only the past; a signature from the future is refused too.
    if (_signed_at(header) or 0) > time.time() + TOLERANCE_SECONDS:
        raise ProblemError(400, "invalid_signature", "Stripe signature is dated in the future")
    try:
        parsed = RailEvent.model_validate_json(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "event"
        raise ProblemError(400, "invalid_event", f"{where}: {first['msg']}") from None
    if await session.get(StripeEvent, parsed.id) is not None:
        return {"received": True, "duplicate": True}
    # Handled first, recorded after: a crash or timeout in between leaves the event unrecorded,
    # so Stripe's redelivery handles it again — which changes nothing twice, as every handler
    # is idempotent in the workflow (a repeated word is refused `invalid_state` and ignored).
    handled = await _handle(parsed.model_dump(mode="json"), session, temporal, request)
    session.add(StripeEvent(id=parsed.id, type=parsed.type))
    try:
        await session.commit()
    except IntegrityError:  # a concurrent delivery of the same event recorded it first
        await session.rollback()
    return {"received": True, "handled": handled}


async def _handle(event: dict, session, temporal, request: Request) -> str | None:
    obj, kind = event["data"]["object"], event["type"]
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        campaign_id = await _campaign_of_payment(session, obj.get("payment_intent"))
        if campaign_id is None or not obj.get("id"):
            return None
        if kind == "charge.dispute.created":
            status = "open"
        else:  # `lost`: the network returned the money; anything else closes it in our favour
            status = "lost" if obj.get("status") == "lost" else "won"
        amount = obj.get("amount")
        card = CardDispute(
            dispute_id=obj["id"],
            status=status,
            amount=amount if isinstance(amount, int) and amount >= 0 else 0,
            reason=str(obj.get("reason") or "")[:500],
        )
        await _tell(temporal, campaign_id, CampaignWorkflow.card_dispute, card, request)
        return campaign_id
    if kind == "account.updated" and obj.get("payouts_enabled"):
        # A connected account can be paid now: its blocked payouts go again.
        party = (
            await session.exec(select(Party).where(Party.stripe_account == obj.get("id")))
        ).first()
        if party is None:
            return None
        campaigns = await session.exec(
            select(CampaignRecord.id).where(
                involving(CampaignRecord, party.id),
                # Owed payouts keep a completed or expired campaign's workflow open.
                CampaignRecord.status.in_(
                    ("active", "cancelled", "disputed", "frozen", "completed", "expired")
                ),
            )
        )
        retry = RetryPayouts(reason=f"Stripe account {obj.get('id')} can be paid")
        for campaign_id in campaigns.all():
            await _tell(temporal, campaign_id, CampaignWorkflow.retry_payouts, retry, request)
        return party.id
    if kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        # A charge that was settling (`funding_pending`), or whose answer the fund action
        # never saw, is settled by the rail's word; one the action already saw is ignored.
        if not obj.get("id"):
            return None
        campaign_id = await _campaign_of_payment(session, obj.get("id")) or (
            obj.get("metadata") or {}
        ).get("campaign_id")
        if campaign_id is None:
            return None
        error = obj.get("last_payment_error")
        reason = (error.get("message") if isinstance(error, dict) else None) or ""
        settled = FundingSettled(
            reference=obj["id"],
            succeeded=kind == "payment_intent.succeeded",
            reason=str(reason)[:500],
        )
        await _tell(temporal, campaign_id, CampaignWorkflow.funding_settled, settled, request)
        return campaign_id
    return None


async def _tell(
    temporal, campaign_id: str, update: Callable[..., Any], arg, request: Request
) -> None:
    """The rail's word to a campaign. A campaign that has nothing to do with it (already
    known, nothing blocked, nothing settling: `invalid_state`) is fine: events repeat."""
    try:
        await send_update(temporal, f"campaign-{campaign_id}", update, arg, request=request)
    except ProblemError as err:
        if err.code != "invalid_state":
            raise
