"""Escrow arithmetic (SPEC §2): integer minor units, exact ledger, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

BPS_DENOMINATOR = 10_000
MAX_AMOUNT = 10**12  # minor units; far above any campaign, far below int64 overflow

# Money as every payload takes it: an integer of minor units — never a bool, a string or a
# float ("100", 100.0, 1e3 and true are refused) — within 0..MAX_AMOUNT.
Money = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]


class MoneyError(ValueError):
    """A money movement that cannot happen (negative, more than held, bad rates)."""


@dataclass(frozen=True)
class ReleaseSplit:
    gross: int
    platform_fee: int
    agency_commission: int
    creator_net: int


def _check_bps(platform_fee_bps: int, agency_commission_bps: int) -> None:
    for name, bps in (
        ("platform_fee_bps", platform_fee_bps),
        ("agency_commission_bps", agency_commission_bps),
    ):
        if not 0 <= bps <= BPS_DENOMINATOR:
            raise MoneyError(f"{name} must be within 0..{BPS_DENOMINATOR}, got {bps}")
    if platform_fee_bps + agency_commission_bps > BPS_DENOMINATOR:
        raise MoneyError(
            "platform_fee_bps + agency_commission_bps must not exceed "
            f"{BPS_DENOMINATOR}, got {platform_fee_bps + agency_commission_bps}"
        )


def split_release(gross: int, platform_fee_bps: int, agency_commission_bps: int) -> ReleaseSplit:
    """Split a gross release to the creator side: fee and commission are floored,
    the creator gets the remainder, so the parts always sum to `gross` exactly."""
    if gross < 0:
        raise MoneyError(f"gross must be >= 0, got {gross}")
    _check_bps(platform_fee_bps, agency_commission_bps)
    # Integer floor division only: floats would lose cents on large amounts.
    fee = gross * platform_fee_bps // BPS_DENOMINATOR
    commission = gross * agency_commission_bps // BPS_DENOMINATOR
    return ReleaseSplit(
        gross=gross,
        platform_fee=fee,
        agency_commission=commission,
        creator_net=gross - fee - commission,
    )


def check_split(release_to_creator: int, refund_to_brand: int, disputed_amount: int) -> None:
    """A claim, offer, proposal or ruling must split exactly the disputed amount (SPEC §4)."""
    if release_to_creator < 0 or refund_to_brand < 0:
        raise MoneyError(
            "release_to_creator and refund_to_brand must be >= 0, got "
            f"{release_to_creator} and {refund_to_brand}"
        )
    if release_to_creator + refund_to_brand != disputed_amount:
        raise MoneyError(
            f"release_to_creator + refund_to_brand must equal the disputed amount "
            f"{disputed_amount}, got {release_to_creator} + {refund_to_brand} = "
            f"{release_to_creator + refund_to_brand}"
        )


class Escrow(BaseModel):
    """A campaign's escrow ledger. Frozen: every movement returns a new Escrow, so a
    failed movement can never leave a half-applied ledger behind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    funded: int = Field(default=0, ge=0)
    held: int = Field(default=0, ge=0)
    released_to_creator: int = Field(default=0, ge=0)
    agency_commission: int = Field(default=0, ge=0)
    platform_fee: int = Field(default=0, ge=0)
    refunded_to_brand: int = Field(default=0, ge=0)
    # Taken back from the escrow by the card network (a lost chargeback, SPEC §9).
    charged_back: int = Field(default=0, ge=0)

    @property
    def is_exact(self) -> bool:
        parts = (
            self.held,
            self.released_to_creator,
            self.agency_commission,
            self.platform_fee,
            self.refunded_to_brand,
            self.charged_back,
        )
        return all(p >= 0 for p in (self.funded, *parts)) and self.funded == sum(parts)

    def _check_out(self, what: str, amount: int) -> None:
        if amount < 0:
            raise MoneyError(f"{what} must be >= 0, got {amount}")
        if amount > self.held:
            raise MoneyError(f"{what} {amount} exceeds held {self.held}")

    def fund(self, amount: int) -> Escrow:
        """One charge for the whole budget (SPEC §3.3): only once, only positive."""
        if self.funded != 0:
            raise MoneyError(f"escrow already funded with {self.funded}")
        if amount <= 0:
            raise MoneyError(f"funding amount must be > 0, got {amount}")
        return self.model_copy(update={"funded": amount, "held": self.held + amount})

    def release(self, gross: int, platform_fee_bps: int, agency_commission_bps: int) -> Escrow:
        """Move `gross` out of held to the creator side through the fee/commission rule."""
        self._check_out("release", gross)
        split = split_release(gross, platform_fee_bps, agency_commission_bps)
        return self.model_copy(
            update={
                "held": self.held - gross,
                "released_to_creator": self.released_to_creator + split.creator_net,
                "agency_commission": self.agency_commission + split.agency_commission,
                "platform_fee": self.platform_fee + split.platform_fee,
            }
        )

    def charge_back(self, amount: int) -> Escrow:
        """Move `amount` out of held to what the card network took back."""
        self._check_out("chargeback", amount)
        return self.model_copy(
            update={"held": self.held - amount, "charged_back": self.charged_back + amount}
        )

    def refund(self, amount: int) -> Escrow:
        """Move `amount` out of held back to the brand; refunds carry no fee."""
        self._check_out("refund", amount)
        return self.model_copy(
            update={
                "held": self.held - amount,
                "refunded_to_brand": self.refunded_to_brand + amount,
            }
        )

    def settle(
        self,
        release_to_creator_gross: int,
        refund_to_brand: int,
        platform_fee_bps: int,
        agency_commission_bps: int,
    ) -> Escrow:
        """Execute a dispute split: the creator side through the fee rule, the rest refunded."""
        # Check both halves and their total up front so the error names the real cause.
        if release_to_creator_gross < 0 or refund_to_brand < 0:
            raise MoneyError(
                "settlement amounts must be >= 0, got "
                f"{release_to_creator_gross} and {refund_to_brand}"
            )
        self._check_out("settlement", release_to_creator_gross + refund_to_brand)
        released = self.release(release_to_creator_gross, platform_fee_bps, agency_commission_bps)
        return released.refund(refund_to_brand)
