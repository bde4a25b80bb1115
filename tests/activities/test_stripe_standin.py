"""The Stripe stand-in's rules (tests/stripe_standin.py), seen through `StripeRail` and the
SDK over real HTTP, and the rail's look-ups that keep a retry from paying twice once Stripe
has forgotten a key."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from activities.rails import PaymentDeclined, RailRefused, StripeRail
from tests.stripe_standin import StripeStandin, compare_ledger, double_movements

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

SECRET = "whsec_standin"


@pytest.fixture
def standin():
    with StripeStandin(webhook_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def rail(standin) -> StripeRail:
    return StripeRail("sk_test_standin", standin.url)


def key(step: str) -> str:
    return f"cmp_{uuid.uuid4().hex[:12]}:{step}"


async def test_a_key_answers_its_first_result_until_it_is_forgotten(standin, rail):
    k = key("release:0:creator")
    first = await rail.transfer(k, 900, "eur", "pty_c", "acct_c", "cmp_1")
    assert await rail.transfer(k, 900, "eur", "pty_c", "acct_c", "cmp_1") == first
    assert len(standin.book) == 1

    standin.advance(24 * 60 * 60)  # Stripe prunes keys once they are 24 h old
    again = await rail.transfer(k, 900, "eur", "pty_c", "acct_c", "cmp_1")
    assert again != first and double_movements(standin.book)  # what a blind retry does
    assert await rail.find_transfer(k, "cmp_1") in (first, again)


async def test_a_key_with_other_parameters_is_an_idempotency_error(standin, rail):
    k = key("release:0:creator")
    await rail.transfer(k, 900, "eur", "pty_c", "acct_c", "cmp_1")
    with pytest.raises(RailRefused, match="same parameters"):
        await rail.transfer(k, 901, "eur", "pty_c", "acct_c", "cmp_1")
    assert [b.amount for b in standin.book] == [900]


async def test_a_500_after_acting_is_saved_under_the_key(standin, rail):
    k = key("refund:0")
    charge, _ = await rail.charge(key("fund"), 5_000, "eur", "pm_card_visa", "d", "cmp_1")
    standin.fail_next("POST /v1/refunds", when="after")
    for _ in range(2):  # the replay answers the saved 500 too
        with pytest.raises(stripe.APIError):
            await rail.refund(k, charge, 2_000)
    refund = await rail.find_refund(k, charge)
    assert refund and [b.id for b in standin.book if b.kind == "refund"] == [refund]
    assert await rail.find_refund(key("refund:1"), charge) is None


async def test_a_500_before_acting_leaves_nothing(standin, rail):
    standin.fail_next("POST /v1/transfers", when="before")
    with pytest.raises(stripe.APIError):
        await rail.transfer(key("x"), 900, "eur", "pty_c", "acct_c", "cmp_2")
    assert standin.book == [] and await rail.find_transfer("x", "cmp_2") is None


async def test_payment_intents_settle_later_decline_and_are_found_by_search(standin, rail):
    k = key("fund")
    assert await rail.find_charge(k) is None
    intent, settling = await rail.charge(k, 7_000, "eur", "pm_sepa_debit_processing", "d", "c")
    assert settling and await rail.find_charge(k) == (intent, True)
    standin.settle(intent, succeeded=True)
    assert await rail.find_charge(k) == (intent, False)

    with pytest.raises(PaymentDeclined, match="declined"):
        await rail.charge(key("fund"), 7_000, "eur", "pm_card_visa_chargeDeclined", "d", "c")
    assert [b.status for b in standin.book] == ["succeeded"]

    standin.search_lag = 60  # Stripe's index lags: a charge this fresh is not found yet
    assert await rail.find_charge(k) is None


async def test_refunds_are_refused_while_a_dispute_is_open(standin, rail):
    intent, _ = await rail.charge(key("fund"), 5_000, "eur", "pm_card_visa", "d", "cmp_3")
    dispute = standin.dispute(intent, 1_000)
    with pytest.raises(RailRefused, match="disputed"):
        await rail.refund(key("refund:0"), intent, 1_000)
    standin.close_dispute(dispute, "lost")
    with pytest.raises(RailRefused, match="greater than"):
        await rail.refund(key("refund:1"), intent, 4_500)  # 1,000 went back to the card
    await rail.refund(key("refund:2"), intent, 4_000)
    assert sorted(b.kind for b in standin.book) == ["charge", "chargeback", "refund"]


async def test_transfers_to_an_account_without_payouts_are_refused(standin, rail):
    standin.set_account("acct_kyc", payouts_enabled=False)
    with pytest.raises(RailRefused, match="capabilities"):
        await rail.transfer(key("t"), 100, "eur", "pty_c", "acct_kyc", "cmp_4")


async def test_slow_answers_come_after_the_object_exists(standin, rail):
    standin.slow_next("POST /v1/transfers", 60)
    rail.client = stripe.StripeClient(
        "sk_test_standin",
        base_addresses={"api": standin.url},
        http_client=stripe.HTTPXClient(timeout=0.5),
        max_network_retries=0,
    )
    k = key("release:1:creator")
    with pytest.raises(stripe.APIConnectionError):
        await rail.transfer(k, 900, "eur", "pty_c", "acct_c", "cmp_5")
    standin.release()
    assert await rail.find_transfer(k, "cmp_5") == standin.book[0].id


def test_events_are_signed_queued_until_acknowledged_and_sent_out_of_order(standin):
    seen: list[tuple[str, str]] = []
    answers = iter([500, 200, 200, 200, 200, 200])

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers["Content-Length"])).decode()
            stripe.WebhookSignature.verify_header(
                payload, self.headers["Stripe-Signature"], SECRET, 300
            )
            event = json.loads(payload)
            seen.append((event["type"], event["id"]))
            self.send_response(next(answers))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        standin.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/"
        standin.set_account("acct_a", payouts_enabled=True)
        standin.set_account("acct_b", payouts_enabled=True)
        first = standin.deliver(order="reverse")
        assert [d.status for d in first] == [500, 200]  # acct_b's first
        assert len(standin.pending) == 1  # the one answered 500 goes again
        again = standin.deliver(repeat=2)
        assert [d.status for d in again] == [200, 200] and standin.pending == []
        ids = [event_id for _, event_id in seen]
        assert ids[0] == ids[2] == ids[3] != ids[1]  # the same event, three times
    finally:
        server.shutdown()
        server.server_close()


def test_compare_ledger_names_what_differs(standin):
    ledger = [
        {"kind": "fund", "state": "succeeded", "amount": 100, "rail_reference": "pi_1"},
        {"kind": "fee", "state": "succeeded", "amount": 10, "rail_reference": None},
    ]
    assert compare_ledger(ledger, []) == ["ledger only: ('charge', 'pi_1', 100)"]
