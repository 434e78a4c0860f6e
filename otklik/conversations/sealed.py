"""The raw answer to a sensitive question, kept only encrypted.

When the conversation waits at a `sensitive: true` question (payout details), ingest stores the buyer's
message masked (`otklik.core.redact.mask_sensitive`) in the message row, the inbox preview, the flow
variables and everything else it writes; the raw text travels only Fernet-encrypted, as `payload.sealed` of
the message row, to the action that reads it (`cashback.step`). That action drops the sealed copy once it
has stored the details (encrypted) where they belong. The copy is in the database, so an action re-run
after a crash, or in another process, still finds it.
"""

from __future__ import annotations

from typing import Any

from otklik.adapters.crypto import Vault

SEALED = "sealed"


def seal_text(vault: Vault, text: str) -> str:
    """`vault`: the install's (`RuntimeContext.vault`, the same object as `Otklik.vault`)."""
    return vault.encrypt(text)


def unseal_text(vault: Vault, payload: dict[str, Any] | None) -> str | None:
    """The raw text of a message stored with a sealed copy, or None when it has none (or it cannot be read)."""
    token = (payload or {}).get(SEALED)
    if not isinstance(token, str):
        return None
    try:
        return vault.decrypt(token)
    except ValueError:
        return None
