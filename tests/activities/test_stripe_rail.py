"""The Stripe rail: behaviour against localstripe, and the exact requests the SDK sends.

localstripe covers PaymentIntents and Refunds but has no /v1/transfers, no idempotency
keys and does not decline `pm_card_visa_chargeDeclined` at charge time (it declines that
card only when attached to a customer). Those parts are pinned instead by recording the
SDK's requests on a local HTTP server answering like Stripe does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import stripe
from temporalio.testing import ActivityEnvironment

from activities.payments import PaymentActivities
from activities.rails import MissingPayoutAccount, PaymentDeclined, StripeRail
from domain.payments import DECLINED_PAYMENT_METHOD, DEFAULT_PAYMENT_METHOD, FundCampaign

API_KEY = "sk_test_parley"

# stripe 16's HTTPX client posts its (already encoded) form with httpx's deprecated `data=`.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def new_key(step: str) -> str:
    return f"cmp_{uuid.uuid4().hex[:16]}:{step}"


@pytest.fixture
def rail(localstripe_url) -> StripeRail:
    return StripeRail(API_KEY, localstripe_url)


# --- against localstripe ------------------------------------------------------------------


async def test_charge_confirms_a_payment_intent(rail):
    key = new_key("fund")
    reference, settling = await rail.charge(
        key, 5_000, "eur", DEFAULT_PAYMENT_METHOD, "Parley campaign", "cmp_1"
    )
    assert reference.startswith("pi_") and not settling
    intent = await rail.client.v1.payment_intents.retrieve_async(reference)
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 5_000, "eur")
    assert intent.metadata["idempotency_key"] == key


async def test_charge_decline_from_stripe_is_payment_declined(rail):
    # The card localstripe declines at charge time; the SDK sees a real 402 over HTTP.
    with pytest.raises(PaymentDeclined, match="declined"):
        await rail.charge(new_key("fund"), 5_000, "eur", "pm_card_chargeCustomerFail", "x", "c")


async def test_partial_refunds_of_a_charge(rail):
    charge, _ = await rail.charge(new_key("fund"), 5_000, "eur", DEFAULT_PAYMENT_METHOD, "x", "c")
    first = await rail.refund(new_key("refund:0"), charge, 2_000)
    second = await rail.refund(new_key("refund:1"), charge, 1_500)
    assert first.startswith("re_") and second.startswith("re_") and first != second
    refunds = [await rail.client.v1.refunds.retrieve_async(r) for r in (first, second)]
    assert [(r.amount, r.payment_intent, r.status) for r in refunds] == [
        (2_000, charge, "succeeded"),
        (1_500, charge, "succeeded"),
    ]


async def test_repeated_funding_activity_creates_one_payment_intent(
    settings, sessionmaker, localstripe_url
):
    settings = settings.model_copy(
        update={"payments": "stripe", "stripe_api_key": API_KEY, "stripe_api_base": localstripe_url}
    )
    payments = PaymentActivities(settings, sessionmaker)
    cid = f"cmp_{uuid.uuid4().hex[:16]}"
    arg = FundCampaign(
        idempotency_key=f"{cid}:fund", campaign_id=cid, brand_id="b", amount=7_000, currency="usd"
    )
    first = await ActivityEnvironment().run(payments.fund_campaign, arg)
    again = await ActivityEnvironment().run(payments.fund_campaign, arg)
    assert first == again and first.rail == "stripe" and first.reference.startswith("pi_")

    page = await payments.rail.client.v1.payment_intents.list_async({"limit": 100})
    made = [
        pi.id
        async for pi in page.auto_paging_iter()
        if pi.metadata.to_dict().get("idempotency_key") == arg.idempotency_key
    ]
    assert made == [first.reference]


# --- exact requests, on a recording stand-in for api.stripe.com -----------------------------


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None
    authorization: str | None


@dataclass
class FakeStripe:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    # path -> (status, JSON body) answered to every request on that path
    answers: dict[str, tuple[int, dict]] = field(default_factory=dict)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            fake.requests.append(
                Recorded(
                    method="POST",
                    path=self.path,
                    form=dict(parse_qsl(body)),
                    idempotency_key=self.headers.get("Idempotency-Key"),
                    authorization=self.headers.get("Authorization"),
                )
            )
            status, answer = fake.answers.get(self.path, (404, {"error": {"type": "api_error"}}))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_transfer_request_is_exact(fake_stripe):
    fake_stripe.answers["/v1/transfers"] = (
        200,
        {"id": "tr_1Pinned", "object": "transfer", "amount": 5_100, "currency": "eur"},
    )
    rail = StripeRail(API_KEY, fake_stripe.url)
    reference = await rail.transfer(
        "cmp_1:release:0", 5_100, "eur", "creator_1", "acct_1Creator", "cmp_1"
    )
    assert reference == "tr_1Pinned"
    assert fake_stripe.requests == [
        Recorded(
            method="POST",
            path="/v1/transfers",
            form={
                "amount": "5100",
                "currency": "eur",
                "destination": "acct_1Creator",
                "transfer_group": "cmp_1",
                "metadata[idempotency_key]": "cmp_1:release:0",
                "metadata[party_id]": "creator_1",
            },
            idempotency_key="cmp_1:release:0",
            authorization=f"Bearer {API_KEY}",
        )
    ]


async def test_transfer_without_connected_account_sends_nothing(fake_stripe):
    rail = StripeRail(API_KEY, fake_stripe.url)
    with pytest.raises(MissingPayoutAccount):
        await rail.transfer("cmp_1:release:0", 100, "eur", "creator_1", None, "cmp_1")
    assert fake_stripe.requests == []


async def test_charge_and_refund_requests_are_exact_and_repeat_their_key(fake_stripe):
    fake_stripe.answers["/v1/payment_intents"] = (
        200,
        {"id": "pi_1Pinned", "object": "payment_intent", "status": "succeeded"},
    )
    fake_stripe.answers["/v1/refunds"] = (200, {"id": "re_1Pinned", "object": "refund"})
    rail = StripeRail(API_KEY, fake_stripe.url)
    for _ in range(2):  # a retry sends the very same request, so Stripe dedupes it
        charged = await rail.charge("cmp_1:fund", 9_000, "eur", "pm_card_visa", "d", "cmp_1")
        assert charged == ("pi_1Pinned", False)
    assert await rail.refund("cmp_1:refund:2", "pi_1Pinned", 3_000) == "re_1Pinned"

    charge = {
        "amount": "9000",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "confirm": "true",
        "metadata[idempotency_key]": "cmp_1:fund",
        "metadata[campaign_id]": "cmp_1",
        "metadata[description]": "d",
    }
    assert [(r.path, r.form, r.idempotency_key) for r in fake_stripe.requests] == [
        ("/v1/payment_intents", charge, "cmp_1:fund"),
        ("/v1/payment_intents", charge, "cmp_1:fund"),
        (
            "/v1/refunds",
            {
                "payment_intent": "pi_1Pinned",
                "amount": "3000",
                "metadata[idempotency_key]": "cmp_1:refund:2",
            },
            "cmp_1:refund:2",
        ),
    ]


async def test_stripe_card_decline_is_payment_declined(fake_stripe):
    # What api.stripe.com answers a confirmed PaymentIntent on pm_card_visa_chargeDeclined.
    fake_stripe.answers["/v1/payment_intents"] = (
        402,
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            }
        },
    )
    rail = StripeRail(API_KEY, fake_stripe.url)
    with pytest.raises(PaymentDeclined, match="Your card was declined"):
        await rail.charge("cmp_1:fund", 9_000, "eur", DECLINED_PAYMENT_METHOD, "d", "cmp_1")


@pytest.mark.parametrize("status", ["requires_payment_method", "canceled"])
async def test_unfinished_payment_intent_is_payment_declined(fake_stripe, status):
    fake_stripe.answers["/v1/payment_intents"] = (
        200,
        {"id": "pi_1", "object": "payment_intent", "status": status},
    )
    rail = StripeRail(API_KEY, fake_stripe.url)
    with pytest.raises(PaymentDeclined, match=status):
        await rail.charge("cmp_1:fund", 9_000, "eur", DEFAULT_PAYMENT_METHOD, "d", "cmp_1")


@pytest.mark.parametrize("status", ["processing", "requires_action"])
async def test_a_payment_intent_still_settling_is_funding_pending(fake_stripe, status):
    """SPEC §9: `processing` (a debit settling) and `requires_action` (the brand must
    authenticate) are not money yet: the webhook settles them."""
    fake_stripe.answers["/v1/payment_intents"] = (
        200,
        {"id": "pi_1", "object": "payment_intent", "status": status},
    )
    rail = StripeRail(API_KEY, fake_stripe.url)
    charged = await rail.charge("cmp_1:fund", 9_000, "eur", DEFAULT_PAYMENT_METHOD, "d", "cmp_1")
    assert charged == ("pi_1", True)


async def test_server_errors_stay_retryable(fake_stripe):
    fake_stripe.answers["/v1/transfers"] = (
        500,
        {"error": {"type": "api_error", "message": "An unknown error occurred"}},
    )
    rail = StripeRail(API_KEY, fake_stripe.url)
    with pytest.raises(stripe.APIError):
        await rail.transfer("cmp_1:release:0", 100, "eur", "creator_1", "acct_1", "cmp_1")
    assert len(fake_stripe.requests) == 1  # the SDK does not retry; Temporal does
