"""Signed outgoing event webhooks: `emit` in the caller's transaction, a worker that delivers at least once
with retries, endpoints managed from the CLI and the admin (docs/webhooks.md)."""

from otklik.platform.webhooks.events import emit
from otklik.platform.webhooks.signing import SignatureError, verify_signature

__all__ = ["SignatureError", "emit", "verify_signature"]
