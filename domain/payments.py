"""Arguments and results of money-moving activities (one object each, SPEC §2)."""

from __future__ import annotations

from pydantic import BaseModel

DEFAULT_PAYMENT_METHOD = "pm_card_visa"
DECLINED_PAYMENT_METHOD = "pm_card_visa_chargeDeclined"

# ApplicationError type for a declined card: a business outcome, never retried.
PAYMENT_DECLINED = "PaymentDeclined"
# ApplicationError type for a transfer or refund the rail refused for good (no payout account,
# payouts disabled, a charge under dispute, the platform's balance short): no money moved, and
# retrying the same request cannot help. The workflow parks the payout until it is retried.
RAIL_REFUSED = "RailRefused"


class FundCampaign(BaseModel):
    """One charge for the whole budget on the brand's payment method."""

    idempotency_key: str  # "{campaign_id}:fund", then ":fund:2"... for later attempts
    campaign_id: str
    brand_id: str
    amount: int
    currency: str
    payment_method: str = DEFAULT_PAYMENT_METHOD


class ReleaseFunds(BaseModel):
    """A gross amount to the creator side: net to the creator, commission to the agency."""

    idempotency_key: str  # "{campaign_id}:release:{n}" or "{dispute_id}:settle:release"
    campaign_id: str
    currency: str
    gross: int
    platform_fee: int
    agency_commission: int
    creator_net: int
    creator_id: str
    agency_id: str | None = None
    # 1, then 2, 3... after a refusal was fixed: a refused leg goes again under a new key
    # (`{key}:2`), a leg that succeeded under any earlier key never goes again.
    attempt: int = 1


class RefundFunds(BaseModel):
    idempotency_key: str  # "{campaign_id}:refund:{n}" or "{dispute_id}:settle:refund"
    campaign_id: str
    currency: str
    amount: int
    attempt: int = 1  # as ReleaseFunds.attempt


class Movement(BaseModel):
    """What the rail did; `reference` is its id (PaymentIntent, Transfer, Refund...)."""

    idempotency_key: str
    rail: str
    reference: str
    amount: int
    # A charge the rail accepted but has not settled (`processing`): not money yet.
    settling: bool = False


class SettleFunding(BaseModel):
    """The rail's final word on a settling or unanswered charge, for its ledger row."""

    idempotency_key: str
    campaign_id: str
    reference: str
    succeeded: bool
    reason: str = ""


class RecordChargeback(BaseModel):
    """A lost card dispute: the network returned `amount` of the funding charge to the brand.
    Booked as its own ledger row (no rail call: the network already moved the money)."""

    idempotency_key: str  # "{campaign_id}:chargeback:{dispute_id}"
    campaign_id: str
    currency: str
    amount: int
    reference: str  # the rail's dispute id
