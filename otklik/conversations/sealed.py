"""The raw answer to a sensitive question, kept only encrypted.

When the conversation waits at a `sensitive: true` question (payout details), ingest stores the buyer's
message masked (`otklik.core.redact.mask_sensitive`) in the message row, the inbox preview, the flow
variables and everything else it writes; the raw text travels only Fernet-encrypted, as `payload.sealed` of
the message row, to the action that reads it (`cashback.step`). That action drops the sealed copy once it
has stored the details (encrypted) where they belong. The copy is in the database, so an action re-run
after a crash, or in another process, still finds it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from otklik.adapters.crypto import Vault, load_or_create_key
from otklik.config import Settings

SEALED = "sealed"


@lru_cache(maxsize=8)
def _vault(key: str) -> Vault:
    return Vault(key)


def vault_for(settings: Settings) -> Vault:
    """The install's Vault (the same key as `Otklik.vault`: OTKLIK_FERNET_KEY, or data_dir/fernet.key in dev)."""
    return _vault(load_or_create_key(settings.fernet_key, settings.data_dir))


def seal_text(settings: Settings, text: str) -> str:
    return vault_for(settings).encrypt(text)


def unseal_text(settings: Settings, payload: dict[str, Any] | None) -> str | None:
    """The raw text of a message stored with a sealed copy, or None when it has none (or it cannot be read)."""
    token = (payload or {}).get(SEALED)
    if not isinstance(token, str):
        return None
    try:
        return vault_for(settings).decrypt(token)
    except ValueError:
        return None
