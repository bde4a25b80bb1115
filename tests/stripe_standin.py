"""A stateful Stripe stand-in over real HTTP: Stripe's behaviours that matter for money.

localstripe (the `localstripe_url` fixture) still answers the plain PaymentIntent and Refund
shapes in tests/activities/test_stripe_rail.py. It has no idempotency keys, no transfers, no
PaymentIntent search, no `processing`, no faults and no webhooks, so this stand-in models
those, each rule as Stripe documents it (docs.stripe.com, API v1):

- **Idempotency** (/api/idempotent_requests, /error-low-level#idempotency): a POST's
  `Idempotency-Key` saves the status and body of its first answer once the endpoint began;
  a repeat gets the same answer back (`Idempotent-Replayed: true`), including a saved error.
  A repeat with other parameters is a 400 `idempotency_error`. Stripe may prune a key once it
  is at least 24 hours old, and a key reused after that is a new request: here a key is
  forgotten `key_ttl` seconds (default 24 h) after its first use, on the stand-in's own clock,
  which `advance()` moves — a retry after that creates a second object unless the caller
  looks the first one up.
- **Server errors** (/error-low-level#server-errors): a 5xx leaves the outcome unknown. On
  command (`fail_next`, or `fail_rate` for a random share) a request fails `before` it runs
  (nothing done, nothing saved — a front-end failure) or `after` (the object is made and the
  500 is saved under the key, so replays of the key answer 500 until the key is pruned).
- **Slow answers** (`slow_next`): the object is made and its answer saved, but the response is
  held back for N seconds (or until `release()`): past the client's or the activity's timeout.
- **PaymentIntents** (/payments/paymentintents/lifecycle): created with `confirm=true`, a
  card succeeds at once; a payment method whose name contains `processing` (a bank debit)
  stays `processing` until `settle(pi, succeeded)` moves it to `succeeded` or back to
  `requires_payment_method` with `last_payment_error`; one containing `chargeDeclined` is a
  402 `card_error` (`card_declined`).
- **Search** (/search): `GET /v1/payment_intents/search?query=metadata['k']:'v'`. Stripe's
  index is eventually consistent (new objects typically show within a minute, so it is not
  for read-after-write): `search_lag` seconds (default 0).
- **Transfers to connected accounts** (/connect/separate-charges-and-transfers): the
  `destination` must be a connected account that can receive transfers (`set_account(acct,
  payouts_enabled=False)` makes it refuse: 400); listed by `transfer_group`.
- **Refunds** of a PaymentIntent: at most what was captured, less refunds and lost disputes;
  refused (400 `charge_disputed`) while a dispute is open; listed by `payment_intent`.
- **Disputes** (/disputes): `dispute(pi)` opens one (`charge.dispute.created`, status
  `needs_response`), `close_dispute(dp, "won" | "lost")` closes it (`charge.dispute.closed`);
  a lost one is money the card network took back: a `chargeback` in the book.
- **Webhook events** (/webhooks): every state change queues an Event; `deliver()` POSTs the
  queue to `webhook_url`, signed as Stripe signs (`Stripe-Signature: t=…,v1=HMAC-SHA256(
  secret, "{t}.{payload}")`). Stripe does not guarantee that events arrive in the order they
  were made, and an endpoint may receive the same event (same id) more than once:
  `deliver(order="shuffle" | "reverse", repeat=2)`. An event answered other than 2xx stays
  queued and goes again on the next delivery (Stripe retries for up to three days).

`book` is every money object the stand-in made — charges (PaymentIntents that were
`processing` or `succeeded`), transfers, refunds, chargebacks — with its idempotency key and
campaign, so tests compare it with Parley's ledger (`compare_ledger`, `double_movements`).
Run it in-process (`with StripeStandin(...) as stripe:`) — a thread serves HTTP on a free
loopback port — and point `StripeRail` at `stripe.url` through `STRIPE_API_BASE`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

DAY = 24 * 60 * 60
SEARCH_QUERY = re.compile(r"metadata\['([^']+)'\]\s*:\s*'([^']*)'")


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict]:
    return status, {"error": {"type": kind, "message": message, **extra}}


def _form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back into objects: `metadata[k]=v`, `list[0]=v`."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        if "[" in key:
            name, _, rest = key.partition("[")
            inner = rest.rstrip("]")
            if inner.isdigit():
                out.setdefault(name, []).append(value)
            else:
                out.setdefault(name, {})[inner] = value
        else:
            out[key] = value
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client gone mid-request (a SIGKILLed worker) is the point of the exercise.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Saved:
    """What an idempotency key stands for: its request and its first answer."""

    route: str
    params: dict[str, Any]
    at: float
    status: int = 0
    body: dict | None = None


@dataclass
class Booked:
    """One money object at the stand-in: what Parley's ledger must match."""

    kind: str  # charge | transfer | refund | chargeback
    id: str
    amount: int
    currency: str
    campaign_id: str
    idempotency_key: str  # from metadata (a chargeback: its dispute's id)
    status: str  # a charge's PaymentIntent status; the others `succeeded`


@dataclass
class Fault:
    route: str  # "POST /v1/transfers"; a prefix matches
    when: str  # before | after | slow
    seconds: float = 0.0


@dataclass
class Delivery:
    event_id: str
    type: str
    status: int


@dataclass
class StripeStandin:
    """The stand-in's state and its commands; see the module docstring for the rules."""

    webhook_url: str | None = None
    webhook_secret: str | None = None
    key_ttl: float = DAY
    search_lag: float = 0.0
    fail_rate: float = 0.0  # the share of requests answered 5xx (half before, half after)
    seed: int = 0
    url: str = ""
    objects: dict[str, dict] = field(default_factory=dict)
    keys: dict[str, Saved] = field(default_factory=dict)
    accounts: dict[str, bool] = field(default_factory=dict)  # acct -> payouts enabled
    events: list[dict] = field(default_factory=list)  # every event made, oldest first
    pending: list[dict] = field(default_factory=list)  # not yet acknowledged by the endpoint
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)  # (route, status) answered
    faults: list[Fault] = field(default_factory=list)
    injected: Counter = field(default_factory=Counter)  # faults served: ("POST", "after")…

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.offset = 0.0
        self.random = random.Random(self.seed)
        self.released = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._delivering = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> StripeStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin._serve(self, "GET")

            def do_POST(self) -> None:
                standin._serve(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def stop(self) -> None:
        self.released.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self.thread:
            self.thread.join(10)

    def __enter__(self) -> StripeStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- commands -------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Moves the stand-in's clock: keys older than `key_ttl` are then forgotten."""
        with self.lock:
            self.offset += seconds

    def fail_next(self, route: str, count: int = 1, when: str = "before") -> None:
        """The next `count` requests whose "METHOD /path" starts with `route` answer 500."""
        with self.lock:
            self.faults += [Fault(route, when) for _ in range(count)]

    def slow_next(self, route: str, seconds: float) -> None:
        """The next matching request runs at once but is answered `seconds` later (or at
        `release()`)."""
        with self.lock:
            self.released.clear()
            self.faults.append(Fault(route, "slow", seconds))

    def release(self) -> None:
        """Answers every request held by `slow_next` now."""
        self.released.set()

    def set_account(self, account: str, payouts_enabled: bool) -> None:
        with self.lock:
            self.accounts[account] = payouts_enabled
            self._emit(
                "account.updated",
                {
                    "id": account,
                    "object": "account",
                    "payouts_enabled": payouts_enabled,
                    "charges_enabled": True,
                },
            )

    def settle(self, intent_id: str, succeeded: bool) -> None:
        """A `processing` PaymentIntent's outcome: `succeeded`, or the debit failed."""
        with self.lock:
            intent = self.objects[intent_id]
            assert intent["status"] == "processing", intent
            if succeeded:
                intent["status"] = "succeeded"
                intent["amount_received"] = intent["amount"]
                self._emit("payment_intent.succeeded", intent)
            else:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "type": "card_error",
                    "code": "insufficient_funds",
                    "message": "The bank account has insufficient funds.",
                }
                self._emit("payment_intent.payment_failed", intent)

    def dispute(self, intent_id: str, amount: int | None = None, reason: str = "fraudulent") -> str:
        with self.lock:
            intent = self.objects[intent_id]
            dispute = {
                "id": self._id("dp"),
                "object": "dispute",
                "amount": intent["amount"] if amount is None else amount,
                "currency": intent["currency"],
                "charge": intent["latest_charge"],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
                "created": int(self.now()),
            }
            self.objects[dispute["id"]] = dispute
            self._emit("charge.dispute.created", dispute)
            return dispute["id"]

    def close_dispute(self, dispute_id: str, outcome: str) -> None:
        assert outcome in ("won", "lost")
        with self.lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = outcome
            self._emit("charge.dispute.closed", dispute)

    # --- webhook delivery -----------------------------------------------------------------

    def deliver(self, order: str = "created", repeat: int = 1) -> list[Delivery]:
        """POSTs every queued event (`repeat` times each, in `order`: created | reverse |
        shuffle) to `webhook_url`, signed; what the endpoint acknowledged leaves the queue.
        Blocking: call it from a thread (`asyncio.to_thread`) when the endpoint shares the
        caller's event loop."""
        assert self.webhook_url and self.webhook_secret, "no webhook endpoint configured"
        with self._delivering:
            with self.lock:
                batch = [e for e in self.pending for _ in range(repeat)]
            if order == "reverse":
                batch.reverse()
            elif order == "shuffle":
                self.random.shuffle(batch)
            done: list[Delivery] = []
            with httpx.Client(timeout=30) as http:
                for event in batch:
                    payload = json.dumps(event).encode()
                    t = int(time.time())  # the endpoint checks it against its own clock
                    mac = hmac.new(
                        self.webhook_secret.encode(), f"{t}.".encode() + payload, hashlib.sha256
                    ).hexdigest()
                    try:
                        status = http.post(
                            self.webhook_url,
                            content=payload,
                            headers={
                                "Stripe-Signature": f"t={t},v1={mac}",
                                "Content-Type": "application/json",
                            },
                        ).status_code
                    except httpx.HTTPError:
                        status = 0
                    done.append(Delivery(event["id"], event["type"], status))
                    if 200 <= status < 300:
                        with self.lock:
                            self.pending = [e for e in self.pending if e["id"] != event["id"]]
            with self.lock:
                self.deliveries += done
            return done

    # --- the book -------------------------------------------------------------------------

    @property
    def book(self) -> list[Booked]:
        with self.lock:
            found = []
            for obj in self.objects.values():
                kind = obj["object"]
                meta = obj.get("metadata") or {}
                if kind == "payment_intent" and obj["status"] in ("processing", "succeeded"):
                    found.append(
                        Booked(
                            "charge",
                            obj["id"],
                            obj["amount"],
                            obj["currency"],
                            meta.get("campaign_id", ""),
                            meta.get("idempotency_key", ""),
                            obj["status"],
                        )
                    )
                elif kind == "transfer":
                    found.append(
                        Booked(
                            "transfer",
                            obj["id"],
                            obj["amount"],
                            obj["currency"],
                            obj.get("transfer_group") or "",
                            meta.get("idempotency_key", ""),
                            "succeeded",
                        )
                    )
                elif kind == "refund":
                    intent = self.objects[obj["payment_intent"]]
                    found.append(
                        Booked(
                            "refund",
                            obj["id"],
                            obj["amount"],
                            obj["currency"],
                            (intent.get("metadata") or {}).get("campaign_id", ""),
                            meta.get("idempotency_key", ""),
                            "succeeded",
                        )
                    )
                elif kind == "dispute" and obj["status"] == "lost":
                    intent = self.objects[obj["payment_intent"]]
                    found.append(
                        Booked(
                            "chargeback",
                            obj["id"],
                            obj["amount"],
                            obj["currency"],
                            (intent.get("metadata") or {}).get("campaign_id", ""),
                            obj["id"],
                            "succeeded",
                        )
                    )
            return found

    def book_for(self, campaign_id: str) -> list[Booked]:
        return [b for b in self.book if b.campaign_id == campaign_id]

    def routes(self, prefix: str) -> list[int]:
        """The statuses answered to requests whose route starts with `prefix`."""
        with self.lock:
            return [status for route, status in self.requests if route.startswith(prefix)]

    # --- HTTP -----------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = _form(body) if method == "POST" else _form(parts.query)
        route = f"{method} {parts.path}"
        key = handler.headers.get("Idempotency-Key") if method == "POST" else None
        status, answer, hold, replayed = self._answer(route, params, key)
        if hold:
            self.released.wait(hold)
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Request-Id", self._id("req"))
        if replayed:
            handler.send_header("Idempotent-Replayed", "true")
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, route: str, params: dict, key: str | None) -> tuple[int, dict, float, bool]:
        with self.lock:
            fault = self._fault_for(route)
            if fault:
                self.injected[route.split(" ", 1)[0], fault.when] += 1
            status, answer, replayed = self._idempotent(route, params, key, fault)
            self.requests.append((route, status))
        return status, answer, fault.seconds if fault and fault.when == "slow" else 0.0, replayed

    def _fault_for(self, route: str) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if route.startswith(fault.route):
                return self.faults.pop(i)
        if self.fail_rate and self.random.random() < self.fail_rate:
            return Fault(route, self.random.choice(("before", "after")))
        return None

    def _idempotent(
        self, route: str, params: dict, key: str | None, fault: Fault | None
    ) -> tuple[int, dict, bool]:
        server_error = _error(500, "api_error", "An unknown error occurred (stand-in).")
        if fault and fault.when == "before":
            return (*server_error, False)
        now = self.now()
        self.keys = {k: s for k, s in self.keys.items() if now - s.at < self.key_ttl}
        if key is not None and (saved := self.keys.get(key)) is not None:
            if (saved.route, saved.params) != (route, params):
                status, answer = _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}'.",
                )
                return status, answer, False
            return saved.status, saved.body or {}, True
        status, answer = self._route(route, params)
        if fault and fault.when == "after" and status < 500:
            status, answer = server_error
        if key is not None:
            self.keys[key] = Saved(route, params, now, status, answer)
        return status, answer, False

    def _route(self, route: str, params: dict) -> tuple[int, dict]:
        method, path = route.split(" ", 1)
        if route == "POST /v1/payment_intents":
            return self._create_intent(params)
        if route == "GET /v1/payment_intents/search":
            return self._search(params)
        if route == "POST /v1/transfers":
            return self._create_transfer(params)
        if route == "POST /v1/refunds":
            return self._create_refund(params)
        if method == "GET":
            lists = {
                "/v1/payment_intents": ("payment_intent", {}),
                "/v1/transfers": ("transfer", {"transfer_group", "destination"}),
                "/v1/refunds": ("refund", {"payment_intent"}),
            }
            if path in lists:
                kind, filters = lists[path]
                return self._list(path, kind, {k: v for k, v in params.items() if k in filters})
            obj = self.objects.get(path.rsplit("/", 1)[-1])
            if obj is not None and path == f"/v1/{obj['object']}s/{obj['id']}":
                return 200, obj
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({route}).")

    # --- objects --------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(12)}"

    def _emit(self, kind: str, obj: dict) -> None:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(self.now()),
            "type": kind,
            "livemode": False,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        self.events.append(event)
        self.pending.append(event)

    def _create_intent(self, p: dict) -> tuple[int, dict]:
        try:
            amount = int(p["amount"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.")
        method = p.get("payment_method", "")
        intent = {
            "id": self._id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": p.get("currency", ""),
            "payment_method": method,
            "metadata": p.get("metadata", {}),
            "latest_charge": self._id("ch"),
            "created": int(self.now()),
            "last_payment_error": None,
            "status": "requires_confirmation",
        }
        self.objects[intent["id"]] = intent
        self._emit("payment_intent.created", intent)
        if p.get("confirm") != "true":
            return 200, intent
        if "chargeDeclined" in method:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            }
            self._emit("payment_intent.payment_failed", intent)
            return _error(
                402,
                "card_error",
                "Your card was declined.",
                code="card_declined",
                decline_code="generic_decline",
                payment_intent=intent,
            )
        if "processing" in method.lower():
            intent["status"] = "processing"
            self._emit("payment_intent.processing", intent)
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = amount
            self._emit("payment_intent.succeeded", intent)
        return 200, intent

    def _search(self, p: dict) -> tuple[int, dict]:
        terms = SEARCH_QUERY.findall(p.get("query", ""))
        if not terms:
            return _error(400, "invalid_request_error", "Unsupported search query (stand-in).")
        visible_before = self.now() - self.search_lag
        found = [
            obj
            for obj in self.objects.values()
            if obj["object"] == "payment_intent"
            and obj["created"] <= visible_before
            and all((obj.get("metadata") or {}).get(k) == v for k, v in terms)
        ]
        return 200, {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "data": found,
            "has_more": False,
            "next_page": None,
        }

    def _list(self, path: str, kind: str, filters: dict) -> tuple[int, dict]:
        found = [
            obj
            for obj in self.objects.values()
            if obj["object"] == kind and all(obj.get(k) == v for k, v in filters.items())
        ]
        found.sort(key=lambda o: o["created"], reverse=True)  # newest first, as Stripe lists
        return 200, {"object": "list", "url": path, "data": found, "has_more": False}

    def _create_transfer(self, p: dict) -> tuple[int, dict]:
        destination = p.get("destination", "")
        if not destination.startswith("acct_"):
            return _error(
                400,
                "invalid_request_error",
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        if not self.accounts.setdefault(destination, True):
            return _error(
                400,
                "invalid_request_error",
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        transfer = {
            "id": self._id("tr"),
            "object": "transfer",
            "amount": int(p["amount"]),
            "currency": p.get("currency", ""),
            "destination": destination,
            "transfer_group": p.get("transfer_group"),
            "metadata": p.get("metadata", {}),
            "reversed": False,
            "created": int(self.now()),
        }
        self.objects[transfer["id"]] = transfer
        self._emit("transfer.created", transfer)
        return 200, transfer

    def _create_refund(self, p: dict) -> tuple[int, dict]:
        intent = self.objects.get(p.get("payment_intent", ""))
        if intent is None or intent["object"] != "payment_intent":
            return _error(
                400, "invalid_request_error", "No such payment_intent", code="resource_missing"
            )
        disputes = [
            o
            for o in self.objects.values()
            if o["object"] == "dispute" and o["payment_intent"] == intent["id"]
        ]
        if any(d["status"] not in ("won", "lost") for d in disputes):
            return _error(
                400,
                "invalid_request_error",
                f"Charge {intent['latest_charge']} has been disputed.",
                code="charge_disputed",
            )
        refunded = sum(
            o["amount"]
            for o in self.objects.values()
            if o["object"] == "refund" and o["payment_intent"] == intent["id"]
        )
        lost = sum(d["amount"] for d in disputes if d["status"] == "lost")
        left = intent["amount_received"] - refunded - lost
        amount = int(p.get("amount", left))
        if intent["status"] != "succeeded" or amount > left or amount <= 0:
            return _error(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
            )
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "metadata": p.get("metadata", {}),
            "status": "succeeded",
            "created": int(self.now()),
        }
        self.objects[refund["id"]] = refund
        self._emit("charge.refunded", {**intent, "object": "charge", "id": intent["latest_charge"]})
        return 200, refund


# --- comparing Parley's ledger with the book ----------------------------------------------------

# Ledger kinds that moved money at the rail, and the book object each one is.
RAIL_OBJECT = {
    "fund": "charge",
    "release": "transfer",
    "commission": "transfer",
    "refund": "refund",
    "chargeback": "chargeback",
}


def compare_ledger(ledger: Iterable[dict], book: Iterable[Booked]) -> list[str]:
    """Differences between a campaign's ledger (as `GET /v1/campaigns/{id}/ledger` lists it)
    and the stand-in's book for it: each ledger leg that moved money is one book object with
    its amount, and the book holds nothing else."""
    moved = sorted(
        (RAIL_OBJECT[m["kind"]], m["rail_reference"] or "", m["amount"])
        for m in ledger
        if m["kind"] in RAIL_OBJECT and m["state"] in ("succeeded", "settling") and m["amount"]
    )
    booked = sorted((b.kind, b.id, b.amount) for b in book)
    problems = [f"ledger only: {leg}" for leg in moved if leg not in booked]
    problems += [f"rail only: {obj}" for obj in booked if obj not in moved]
    return problems


def double_movements(book: Iterable[Booked]) -> list[str]:
    """Money objects sharing one idempotency key: the same leg moved twice."""
    seen: dict[tuple[str, str], str] = {}
    doubles = []
    for b in book:
        slot = (b.kind, b.idempotency_key)
        if slot in seen:
            doubles.append(f"{b.kind} {b.idempotency_key}: {seen[slot]} and {b.id}")
        seen[slot] = b.id
    return doubles
