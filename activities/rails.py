"""Payment rails: where money actually moves (SPEC §2).

A rail is called with the business idempotency key and must treat a repeated key as the
same request, returning the first result. That is what makes a Temporal retry after a
crash (rail call done, ledger not yet updated) safe. A card decline is `PaymentDeclined`, a
transfer or refund refused for good `RailRefused`; every other failure (network, 5xx, rate
limits, timeouts) is left as an ordinary exception so Temporal retries it with the same key.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import stripe
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select

from db.models import SandboxMovement
from domain.reconciliation import Booked


class PaymentDeclined(Exception):
    """The rail definitively refused the payment (card declined): retrying cannot help."""


class RailRefused(Exception):
    """The rail refused a transfer or refund for good and moved nothing: no payout account,
    payouts not enabled, a charge under dispute, the platform balance short, a request it
    calls invalid. Retrying the same request cannot help; the payout waits for a fix."""


class MissingPayoutAccount(RailRefused):
    """A transfer's party has no connected account yet: it goes through once the party
    finishes onboarding and the payout is retried."""


# Stripe's permanent refusals (4xx other than rate limits and conflicts): nothing was created.
STRIPE_REFUSALS = (
    stripe.InvalidRequestError,
    stripe.PermissionError,
    stripe.AuthenticationError,
    stripe.IdempotencyError,
)

# Sandbox accounts named like this refuse payouts, as a Stripe account whose payouts are not
# enabled yet does: how tests and demos reach the `payout_blocked` path without Stripe.
SANDBOX_BLOCKED_ACCOUNT_PREFIX = "acct_blocked"


# Under the money activities' start-to-close timeout (workflows/campaign.py, 30 s).
HTTP_TIMEOUT_SECONDS = 20.0

# A charge's outcome: the rail's id for it, and whether it is still settling.
Charge = tuple[str, bool]


class Rail(Protocol):
    name: str

    async def charge(
        self,
        key: str,
        amount: int,
        currency: str,
        payment_method: str,
        description: str,
        campaign_id: str,
    ) -> Charge: ...

    async def find_charge(self, key: str) -> Charge | None:
        """The charge made under `key`, looked up by what it carries (not by the key's
        idempotency, which Stripe forgets after 24 h); None if it was never made."""

    async def transfer(
        self,
        key: str,
        amount: int,
        currency: str,
        destination_party_id: str,
        destination_account: str | None,
        transfer_group: str,
    ) -> str: ...

    async def refund(self, key: str, charge_reference: str, amount: int) -> str: ...

    async def find_transfer(self, key: str, transfer_group: str) -> str | None:
        """The transfer made under `key`, looked up by what it carries; None if none was."""

    async def find_refund(self, key: str, charge_reference: str) -> str | None:
        """The refund made under `key`, looked up by what it carries; None if none was."""

    async def book(self, campaign_id: str, charge_reference: str | None) -> list[Booked]:
        """The rail's own record of a campaign's money, for reconciliation: its charges, the
        transfers of its transfer group and the refunds of its charge, each with the key it
        carries (an object made twice shows up twice)."""


def is_declined_test_method(payment_method: str) -> bool:
    # Stripe's test names for declines all contain "chargeDeclined"
    # (pm_card_visa_chargeDeclined, pm_card_chargeDeclinedInsufficientFunds...).
    return "chargeDeclined" in payment_method


def is_settling_test_method(payment_method: str) -> bool:
    # A method that settles later (a bank debit: `processing` on Stripe) in the sandbox.
    return "processing" in payment_method.lower()


def _carried_key(obj: stripe.StripeObject) -> str | None:
    """The business key an object carries in its metadata (StripeObjects are not dicts)."""
    return (obj.to_dict().get("metadata") or {}).get("idempotency_key")


class SandboxRail:
    """The embedded rail: no network, its book is the `sandbox_movement` table.

    The unique idempotency key plays the role of Stripe's idempotency: a repeated key
    returns the stored reference and books nothing new, even under concurrent calls.
    """

    name = "sandbox"

    def __init__(self, sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    async def charge(
        self,
        key: str,
        amount: int,
        currency: str,
        payment_method: str,
        description: str,
        campaign_id: str,
    ) -> Charge:
        if is_declined_test_method(payment_method):
            raise PaymentDeclined(f"Your card was declined ({payment_method}).")
        reference = await self._book(key, "charge", "ch", amount, currency, None)
        return reference, is_settling_test_method(payment_method)

    async def find_charge(self, key: str) -> Charge | None:
        async with self.sessionmaker() as session:
            query = select(SandboxMovement).where(
                SandboxMovement.idempotency_key == key, SandboxMovement.kind == "charge"
            )
            found = (await session.exec(query)).first()
        return (found.reference, False) if found else None

    async def transfer(
        self,
        key: str,
        amount: int,
        currency: str,
        destination_party_id: str,
        destination_account: str | None,
        transfer_group: str,
    ) -> str:
        if (destination_account or "").startswith(SANDBOX_BLOCKED_ACCOUNT_PREFIX):
            raise RailRefused(f"payouts are not enabled on {destination_account}")
        counterparty = destination_account or destination_party_id
        return await self._book(key, "transfer", "tr", amount, currency, counterparty)

    async def refund(self, key: str, charge_reference: str, amount: int) -> str:
        async with self.sessionmaker() as session:
            query = select(SandboxMovement).where(SandboxMovement.reference == charge_reference)
            charge = (await session.exec(query)).first()
        if charge is None:
            raise LookupError(f"sandbox has no charge {charge_reference}")
        return await self._book(key, "refund", "re", amount, charge.currency, charge_reference)

    async def find_transfer(self, key: str, transfer_group: str) -> str | None:
        return await self._booked(key, "transfer")

    async def find_refund(self, key: str, charge_reference: str) -> str | None:
        return await self._booked(key, "refund")

    async def book(self, campaign_id: str, charge_reference: str | None) -> list[Booked]:
        # The campaign's keys start with its id, its disputes' with `dsp_<id>_`; a refund
        # names the charge it returns.
        key = col(SandboxMovement.idempotency_key)
        ours = [
            key.startswith(f"{campaign_id}:"),
            key.startswith(f"dsp_{campaign_id.removeprefix('cmp_')}_"),
        ]
        if charge_reference:
            ours.append(col(SandboxMovement.counterparty) == charge_reference)
        async with self.sessionmaker() as session:
            rows = (await session.exec(select(SandboxMovement).where(or_(*ours)))).all()
        return [Booked(m.idempotency_key, m.kind, m.amount) for m in rows]

    async def _booked(self, key: str, kind: str) -> str | None:
        # The sandbox never forgets a key, so a repeated call is answered by `_book` anyway.
        async with self.sessionmaker() as session:
            query = select(SandboxMovement.reference).where(
                SandboxMovement.idempotency_key == key, SandboxMovement.kind == kind
            )
            return (await session.exec(query)).first()

    async def _book(
        self,
        key: str,
        kind: str,
        prefix: str,
        amount: int,
        currency: str,
        counterparty: str | None,
    ) -> str:
        # Deterministic from the key, so the reference is known before the row exists.
        reference = f"sbx_{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
        async with self.sessionmaker() as session:
            session.add(
                SandboxMovement(
                    idempotency_key=key,
                    kind=kind,
                    amount=amount,
                    currency=currency,
                    counterparty=counterparty,
                    reference=reference,
                )
            )
            try:
                await session.commit()
                return reference
            except IntegrityError:
                await session.rollback()
            # The key was booked first by an earlier or concurrent call: answer as it did.
            query = select(SandboxMovement.reference).where(SandboxMovement.idempotency_key == key)
            return (await session.exec(query)).one()


class StripeRail:
    """Stripe through the official SDK's async (HTTPX) client.

    Retries are Temporal's job (backoff, visible in history), so the SDK does not retry;
    every POST carries the business key as `Idempotency-Key`, so Stripe dedupes Temporal's
    retries for 24 h. Stripe may prune a key after that and would then make a second object,
    so a retry after an unanswered attempt first looks the object up by the key it carries in
    its metadata (`find_charge`, `find_transfer`, `find_refund`).
    """

    name = "stripe"

    def __init__(self, api_key: str | None, api_base: str | None = None) -> None:
        if not api_key:
            raise ValueError("PARLEY_PAYMENTS=stripe needs STRIPE_API_KEY")
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            # A hung answer ends the attempt before its activity times out (30 s), so the
            # retry starts from a finished attempt, not beside one still waiting (SDK: 80 s).
            http_client=stripe.HTTPXClient(timeout=HTTP_TIMEOUT_SECONDS),
            max_network_retries=0,
        )

    async def charge(
        self,
        key: str,
        amount: int,
        currency: str,
        payment_method: str,
        description: str,
        campaign_id: str,
    ) -> Charge:
        try:
            intent = await self.client.v1.payment_intents.create_async(
                {
                    "amount": amount,
                    "currency": currency,
                    "payment_method": payment_method,
                    # Card only, confirmed now: no redirect-based methods for a server charge.
                    "payment_method_types": ["card"],
                    "confirm": True,
                    # In metadata rather than `description`, which localstripe rejects; the
                    # key and campaign let a late or forgotten charge be found and applied.
                    "metadata": {
                        "idempotency_key": key,
                        "campaign_id": campaign_id,
                        "description": description,
                    },
                },
                {"idempotency_key": key},
            )
        except stripe.CardError as err:
            raise PaymentDeclined(err.user_message or str(err)) from err
        # `processing` (a method still settling) and `requires_action` (the brand must
        # authenticate) are funding_pending: the webhook confirms or fails them (SPEC §9).
        if intent.status == "succeeded":
            return intent.id, False
        if intent.status in ("processing", "requires_action"):
            return intent.id, True
        raise PaymentDeclined(f"payment {intent.id} ended {intent.status}")

    async def find_charge(self, key: str) -> Charge | None:
        # Stripe's search is eventually consistent (about a minute): a charge made seconds
        # ago may not show yet, which is why this runs at expiry, not right after a timeout.
        try:
            found = await self.client.v1.payment_intents.search_async(
                {"query": f"metadata['idempotency_key']:'{key}'"}
            )
        except stripe.InvalidRequestError:
            # Search unavailable (localstripe has none): charging again under the same key
            # is still deduplicated by Stripe within its 24 h.
            return None
        for intent in found.data:
            if intent.status == "succeeded":
                return intent.id, False
            if intent.status in ("processing", "requires_action"):
                return intent.id, True
        return None

    async def transfer(
        self,
        key: str,
        amount: int,
        currency: str,
        destination_party_id: str,
        destination_account: str | None,
        transfer_group: str,
    ) -> str:
        if not destination_account:
            raise MissingPayoutAccount(f"party {destination_party_id} has no Stripe account")
        try:
            transfer = await self.client.v1.transfers.create_async(
                {
                    "amount": amount,
                    "currency": currency,
                    "destination": destination_account,
                    "transfer_group": transfer_group,
                    "metadata": {"idempotency_key": key, "party_id": destination_party_id},
                },
                {"idempotency_key": key},
            )
        except STRIPE_REFUSALS as err:
            raise RailRefused(err.user_message or str(err)) from err
        return transfer.id

    async def refund(self, key: str, charge_reference: str, amount: int) -> str:
        try:
            refund = await self.client.v1.refunds.create_async(
                {
                    "payment_intent": charge_reference,
                    "amount": amount,
                    "metadata": {"idempotency_key": key},
                },
                {"idempotency_key": key},
            )
        except STRIPE_REFUSALS as err:  # e.g. charge_disputed, amount_too_large
            raise RailRefused(err.user_message or str(err)) from err
        return refund.id

    async def find_transfer(self, key: str, transfer_group: str) -> str | None:
        # Listing is consistent at once (search is not), and a campaign's transfers share
        # its transfer_group.
        page = await self.client.v1.transfers.list_async(
            {"transfer_group": transfer_group, "limit": 100}
        )
        async for transfer in page.auto_paging_iter():
            if _carried_key(transfer) == key:
                return transfer.id
        return None

    async def find_refund(self, key: str, charge_reference: str) -> str | None:
        page = await self.client.v1.refunds.list_async(
            {"payment_intent": charge_reference, "limit": 100}
        )
        async for refund in page.auto_paging_iter():
            if _carried_key(refund) == key:
                return refund.id
        return None

    async def book(self, campaign_id: str, charge_reference: str | None) -> list[Booked]:
        found = [
            Booked(_carried_key(i) or "", "charge", i.amount)
            for i in await self._charges(campaign_id, charge_reference)
        ]
        if charge_reference:
            refunds = await self.client.v1.refunds.list_async(
                {"payment_intent": charge_reference, "limit": 100}
            )
            async for refund in refunds.auto_paging_iter():
                if refund.status not in ("failed", "canceled"):
                    found.append(Booked(_carried_key(refund) or "", "refund", refund.amount))
        transfers = await self.client.v1.transfers.list_async(
            {"transfer_group": campaign_id, "limit": 100}
        )
        async for transfer in transfers.auto_paging_iter():
            found.append(Booked(_carried_key(transfer) or "", "transfer", transfer.amount))
        return found

    async def _charges(self, campaign_id: str, charge_reference: str | None) -> list:
        """Every PaymentIntent that charged for the campaign: by its metadata when search is
        there (a second charge made under another key shows up too), else the one we know."""
        try:
            found = await self.client.v1.payment_intents.search_async(
                {"query": f"metadata['campaign_id']:'{campaign_id}'", "limit": 100}
            )
            intents = list(found.data)
        except stripe.InvalidRequestError:  # no search (localstripe)
            intents = (
                [await self.client.v1.payment_intents.retrieve_async(charge_reference)]
                if charge_reference
                else []
            )
        return [i for i in intents if i.status in ("processing", "succeeded")]
