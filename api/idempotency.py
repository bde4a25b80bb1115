"""`Idempotency-Key` for every POST (SPEC §8).

The first request with a key claims a row (unique per caller and key) before it runs; its
response is stored and replayed byte for byte, with its status, media type and `Location`.
The same key with another body → 422; while the first is still running → 409. A 5xx frees
the key so the client can retry: every effect behind it is itself idempotent (ledger keys
derive from business data).

The claim's token is part of the Update id (api/temporal.py `update_id`). A 5xx keeps the
claim, unanswered: the retry runs under it, with the same Update id, so it attaches to an
Update that did reach the workflow (whatever failed after: a timeout, a read, a dropped
answer) and performs one that did not. Only when the workflow itself refused for now (503
`payment_unavailable`: that Update is over, nothing moved) is the claim deleted, so the retry
is a new Update — Temporal would otherwise answer the old id with the old failure.

Stored bodies are sealed under the caller's credential: some carry secrets shown once (a new
party's or a rotated API key, a webhook secret), and keys are otherwise kept only as digests.
The scope is a digest of the `Authorization` header, so only a replay, which sends the header
again, can open the body: a copy of the database cannot.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response
from db.models import IdempotencyRecord, as_utc, utcnow

HEADER = "idempotency-key"
CLAIM_STATE = "idempotency_claim"  # request.state: the claim's token, for the Update id
# request.state: set when the workflow itself refused for now (the rail was unavailable): that
# Update is over, so the retry must be a new one (Temporal answers an Update id it knows with
# its first outcome).
RETRY_ANEW = "idempotency_retry_anew"
# A claim older than this belongs to a request whose process died; it may be taken over.
ABANDONED_AFTER = timedelta(minutes=2)
LOCATION_MAX = 2000  # IdempotencyRecord.location
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')


def request_fingerprint(method: str, path: str, query: bytes, headers: Headers, body: bytes) -> str:
    content_type = headers.get("content-type", "")
    # Multipart boundaries are random per send; a retry of the same upload must still match.
    if match := _BOUNDARY.search(content_type):
        body = body.replace(match.group(1).encode(), b"BOUNDARY")
        content_type = content_type.replace(match.group(1), "BOUNDARY")
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, content_type.encode(), body):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            return await self.app(scope, receive, send)
        path = scope["path"]
        if not key.strip() or len(key) > 255:
            response = problem_response(
                422, "invalid_idempotency_key", "Idempotency-Key must be 1-255 characters", path
            )
            return await response(scope, receive, send)

        body = await _read_body(receive)
        credential = headers.get("authorization", "").encode()
        caller = hashlib.sha256(credential).hexdigest()
        fingerprint = request_fingerprint(
            scope["method"], path, scope.get("query_string", b""), headers, body
        )
        sessionmaker = scope["app"].state.sessionmaker

        try:
            claim, refusal = await _claim(sessionmaker, caller, credential, key, fingerprint, path)
        # e.g. SQLite locked past its busy timeout, or no pooled connection free in time
        except (OperationalError, InterfaceError, PoolTimeout):
            refusal = problem_response(
                503, "database_unavailable", "The database is unavailable", path
            )
        if refusal is not None:
            return await refusal(scope, receive, send)
        record_id = claim.id
        scope.setdefault("state", {})[CLAIM_STATE] = claim.token

        status = 500
        content_type: str | None = None
        location: str | None = None
        chunks: list[bytes] = []
        stored = False

        async def store() -> None:
            nonlocal stored
            stored = True
            async with sessionmaker() as session:
                record = await session.get(IdempotencyRecord, record_id)
                if record is None:
                    return
                anew = scope.get("state", {}).get(RETRY_ANEW, False)
                if status >= 500 and not anew:
                    record.in_flight = False  # kept, unanswered: the retry takes it over
                elif status >= 500:
                    await session.delete(record)
                else:
                    record.in_flight = False
                    record.status_code = status
                    record.content_type = content_type
                    record.location = location
                    record.response_body = seal(credential, b"".join(chunks))
                    record.sealed = True
                    session.add(record)
                await session.commit()

        async def capture(message: Message) -> None:
            nonlocal status, content_type, location
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = Headers(raw=message.get("headers", []))
                content_type = headers.get("content-type")
                location = headers.get("location")
                if location and len(location) > LOCATION_MAX:
                    location = None  # never the case for Parley's own paths
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Stored before the client sees the end of the response, so a client
                    # that retries at once gets the replay, not "in flight".
                    await store()
            await send(message)

        try:
            await self.app(scope, _replay_body(body, receive), capture)
        finally:
            if not stored:
                status = 500  # the app failed before answering: free the key
                await store()


async def _claim(
    sessionmaker, caller: str, credential: bytes, key: str, fingerprint: str, path: str
):
    """Insert the claim row, or decide what the duplicate request gets instead."""
    for _ in range(2):
        async with sessionmaker() as session:
            claim = IdempotencyRecord(
                scope=caller, key=key, request_hash=fingerprint, token=secrets.token_hex(16)
            )
            session.add(claim)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
            else:
                await session.refresh(claim)
                return claim, None
            existing = (
                await session.exec(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.scope == caller, IdempotencyRecord.key == key
                    )
                )
            ).first()
            if existing is None:  # freed by a failed first request in the meantime
                continue
            if existing.request_hash != fingerprint:
                return None, problem_response(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request",
                    path,
                )
            if not existing.in_flight and existing.status_code is None:
                # The last attempt's outcome was unknown: this one runs under the same claim
                # (same token, so the same Update), its clock restarted.
                existing.in_flight = True
                existing.created_at = utcnow()
                session.add(existing)
                await session.commit()
                await session.refresh(existing)
                return existing, None
            if existing.in_flight:
                if utcnow() - as_utc(existing.created_at) > ABANDONED_AFTER:
                    await session.exec(
                        delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id)
                    )
                    await session.commit()
                    continue
                return None, problem_response(
                    409,
                    "idempotency_in_flight",
                    "A request with this Idempotency-Key is still being processed",
                    path,
                )
            return None, _StoredResponse(existing, credential)
    return None, problem_response(
        409, "idempotency_in_flight", "Idempotency-Key is contended; retry", path
    )


class _StoredResponse:
    """Replays the first response exactly, marked as a replay."""

    def __init__(self, record: IdempotencyRecord, credential: bytes) -> None:
        self.status = record.status_code or 200
        self.body = record.response_body or b""
        if record.sealed:
            self.body = unseal(credential, self.body)
        self.content_type = record.content_type
        self.location = record.location

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        if self.content_type:
            headers.append((b"content-type", self.content_type.encode()))
        if self.location:
            headers.append((b"location", self.location.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


_SEAL = b"parley idempotency seal v2\0"
_NONCE = 12  # AES-GCM's


def _seal_key(credential: bytes) -> AESGCM:
    # A key per caller, from the credential it presents (high-entropy API keys and tokens).
    return AESGCM(hashlib.sha256(_SEAL + credential).digest())


def seal(credential: bytes, body: bytes) -> bytes:
    """The body encrypted and authenticated (AES-256-GCM) under the caller's credential:
    a fresh nonce, then the ciphertext with its tag."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce + _seal_key(credential).encrypt(nonce, body, _SEAL)


def unseal(credential: bytes, sealed: bytes) -> bytes:
    """The body; `InvalidTag` when it was not sealed under this credential or was altered."""
    nonce, body = sealed[:_NONCE], sealed[_NONCE:]
    return _seal_key(credential).decrypt(nonce, body, _SEAL)


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)
        elif message["type"] == "http.disconnect":
            return b"".join(parts)


def _replay_body(body: bytes, downstream: Receive) -> Receive:
    """Hands the already-read body to the app, then passes on the real disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await downstream()

    return receive
