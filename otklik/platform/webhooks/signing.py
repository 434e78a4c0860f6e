"""Signing outgoing event webhooks and checking a signature (what a receiver does). Pure: no I/O.

Every delivery carries these headers (names are case-insensitive in HTTP):

- `X-Otklik-Event-Id`: the event's UUID — the same on every attempt and every resend: receivers dedupe on it
  (also sent as `Idempotency-Key`);
- `X-Otklik-Event-Type`: e.g. `order.confirmed`;
- `X-Otklik-Timestamp`: the Unix time (seconds) the attempt was signed;
- `X-Otklik-Signature`: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` — the secret as UTF-8 bytes, the
  body as the exact bytes received. Several `v1=` values separated by commas or spaces may come (a secret
  being rotated); one matching value is enough.

`verify_signature` checks the signature (constant-time) and that the timestamp is within `tolerance`
seconds of now, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

EVENT_ID = "X-Otklik-Event-Id"
EVENT_TYPE = "X-Otklik-Event-Type"
TIMESTAMP = "X-Otklik-Timestamp"
SIGNATURE = "X-Otklik-Signature"
DELIVERY = "X-Otklik-Delivery-Id"
ATTEMPT = "X-Otklik-Attempt"
VERSION = "v1"
DEFAULT_TOLERANCE = 300.0


class SignatureError(ValueError):
    """Why a request was not accepted as ours (missing header, stale timestamp, no matching signature)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` with the secret (UTF-8)."""
    signed = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: bytes,
    *,
    event_id: str,
    event_type: str,
    timestamp: int,
    delivery_id: int | None = None,
    attempt: int | None = None,
) -> dict[str, str]:
    """The headers of one delivery attempt."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "otklik-webhooks/1",
        EVENT_ID: event_id,
        EVENT_TYPE: event_type,
        TIMESTAMP: str(int(timestamp)),
        SIGNATURE: f"{VERSION}={signature(secret, timestamp, body)}",
        "Idempotency-Key": event_id,
    }
    if delivery_id is not None:
        headers[DELIVERY] = str(delivery_id)
    if attempt is not None:
        headers[ATTEMPT] = str(attempt)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> int:
    """Check a delivery as a receiver: returns the signed timestamp, or raises `SignatureError`.

    `headers`: any mapping of the request's headers (looked up case-insensitively); `body`: the raw bytes as
    received (not re-serialised JSON); `tolerance`: how many seconds the timestamp may differ from `now`
    (default: the clock; 0 or less disables the check, for replaying stored requests in tests)."""
    raw_ts = _header(headers, TIMESTAMP)
    raw_sig = _header(headers, SIGNATURE)
    if not raw_ts or not raw_sig:
        raise SignatureError(f"missing {TIMESTAMP} or {SIGNATURE} header")
    if not raw_ts.isascii() or not raw_ts.strip().isdigit() or len(raw_ts.strip()) > 12:
        raise SignatureError("the timestamp is not a Unix time in seconds")
    timestamp = int(raw_ts.strip())
    if tolerance > 0 and abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError("the timestamp is outside the tolerance (a replayed or delayed request?)")
    expected = signature(secret, timestamp, body)
    matched = False
    for part in raw_sig.replace(",", " ").split():
        version, _, value = part.partition("=")
        if version == VERSION and hmac.compare_digest(value.encode("ascii", "replace"), expected.encode("ascii")):
            matched = True  # no early exit: every candidate is compared
    if not matched:
        raise SignatureError("no signature matches the body and the secret")
    return timestamp
