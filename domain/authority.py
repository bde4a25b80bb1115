"""Who really sent an Update (issue #12: authority lives in the workflow).

The Temporal UI is open to staff, and its "Send an Update" accepts any JSON: an `actor_id` in
the payload proves nothing. So every Update that acts carries proof of its sender, checked by
the worker before the validator accepts it:

- from the Parley API: an assertion in the Update's `parley-assertion` header, an HMAC over
  (workflow id, Update name, sha256 of the canonical payload, expiry) under the key the API
  and the worker share. The API sets `actor_id` from the caller's key, so a valid assertion
  vouches for the whole payload, admin-only fields included;
- from a mediator in the Temporal UI: a console token in the payload (`console_token`),
  issued by the API to that mediator for a few hours, an HMAC over (mediator id, expiry).

Pure functions of their inputs (no clock of their own), so the worker can check them inside
the workflow sandbox with `workflow.now()`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from domain.contract import canonical_json

ASSERTION_HEADER = "parley-assertion"


def derive_key(secret: str) -> bytes:
    """The signing key from a configured secret (the action secret, or the admin token)."""
    return hashlib.sha256(b"parley-authority\0" + secret.encode()).digest()


def payload_digest(args: Any) -> str:
    """sha256 of the canonical JSON of an Update's arguments (pydantic models or plain)."""
    plain = [a.model_dump(mode="json") if hasattr(a, "model_dump") else a for a in args]
    return hashlib.sha256(canonical_json(plain)).hexdigest()


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    """Constant-time, and any text (compare_digest refuses non-ASCII str: a 500, not a no)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def sign_action(key: bytes, workflow_id: str, update: str, digest: str, expires: int) -> str:
    return f"{expires}.{_mac(key, 'action', workflow_id, update, digest, str(expires))}"


def verify_action(
    key: bytes, assertion: str, workflow_id: str, update: str, digest: str, now: datetime
) -> bool:
    expires, _, mac = assertion.partition(".")
    if not (expires.isascii() and expires.isdigit()) or int(expires) < now.timestamp():
        return False
    return _same(mac, _mac(key, "action", workflow_id, update, digest, expires))


def console_token(key: bytes, mediator_id: str, expires: int) -> str:
    return f"{expires}.{_mac(key, 'console', mediator_id, str(expires))}"


def verify_console_token(key: bytes, token: str, mediator_id: str, now: datetime) -> bool:
    expires, _, mac = token.partition(".")
    if not (expires.isascii() and expires.isdigit()) or int(expires) < now.timestamp():
        return False
    return _same(mac, _mac(key, "console", mediator_id, expires))


def evidence_link_signature(key: bytes, dispute_id: str, evidence_id: str, expires: int) -> str:
    """The signature of a console link to one evidence item (issue #12): the Temporal UI's
    details carry it, the API's /v1/console route checks it (api/routes/console.py)."""
    return _mac(key, "evidence-link", dispute_id, evidence_id, str(expires))


def verify_evidence_link(
    key: bytes, dispute_id: str, evidence_id: str, expires: int, signature: str, now: datetime
) -> bool:
    if expires < now.timestamp():
        return False
    expected = evidence_link_signature(key, dispute_id, evidence_id, expires)
    return _same(signature, expected)
