"""Payment-rail events (SPEC §7): Stripe's signed webhooks, each handled once."""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import ProblemError
from api.temporal import send_update
from db.models import LedgerEntry, StripeEvent
from domain.campaign import SetFrozen

log = logging.getLogger("parley.webhooks")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TOLERANCE_SECONDS = 300


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


@router.post("/stripe")
async def stripe_webhook(
    request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> dict[str, Any]:
    if not settings.stripe_webhook_secret:
        raise ProblemError(503, "webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set")
    payload = await request.body()
    try:
        stripe.Webhook.construct_event(
            payload,
            request.headers.get("stripe-signature", ""),
            settings.stripe_webhook_secret,
            tolerance=TOLERANCE_SECONDS,
        )
    except (ValueError, stripe.SignatureVerificationError) as err:
        raise ProblemError(400, "invalid_signature", f"Stripe signature rejected: {err}") from None

    event = json.loads(payload)  # verified above; plain dicts from here on
    session.add(StripeEvent(id=event["id"], type=event["type"]))
    try:
        await session.commit()
    except IntegrityError:
        return {"received": True, "duplicate": True}
    try:
        handled = await _handle(event, session, temporal, request)
    except Exception:
        # Let Stripe redeliver: forget the event so the retry is handled, not deduplicated.
        await session.rollback()
        await session.delete(await session.get(StripeEvent, event["id"]))
        await session.commit()
        raise
    return {"received": True, "handled": handled}


async def _handle(event: dict, session, temporal, request: Request) -> str | None:
    obj, kind = event["data"]["object"], event["type"]
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        campaign_id = await _campaign_of_payment(session, obj.get("payment_intent"))
        if campaign_id is None:
            return None
        frozen = kind == "charge.dispute.created"
        reason = f"charge dispute {obj.get('id')} ({obj.get('reason') or obj.get('status')})"
        try:
            await send_update(
                temporal,
                f"campaign-{campaign_id}",
                "set_frozen",
                SetFrozen(frozen=frozen, reason=reason),
                request=request,
            )
        except ProblemError as err:
            if err.code != "invalid_state":  # already in that state: nothing to do
                raise
        return campaign_id
    if kind == "payment_intent.succeeded":
        # Funding is confirmed synchronously by the fund action; this event is informational
        # unless a campaign is still waiting on an asynchronous charge.
        campaign_id = (obj.get("metadata") or {}).get("campaign_id")
        log.info("payment_intent.succeeded %s for campaign %s", obj.get("id"), campaign_id)
        return campaign_id
    return None
