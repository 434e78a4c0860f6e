"""Encryption of sensitive fields at rest (channel tokens, payout details) with Fernet."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from otklik.adapters.private_fs import private_dir, private_file


class Vault:
    """Encrypts and decrypts short secrets. The key comes from settings (production) or a local file (dev)."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("cannot decrypt: wrong OTKLIK_FERNET_KEY or corrupted value") from None


def load_or_create_key(configured: str | None, data_dir: Path) -> str:
    """The configured key, or (for the embedded default) one kept in `data_dir/fernet.key` (mode 600)."""
    if configured:
        return configured
    path = data_dir / "fernet.key"
    if path.exists():
        private_file(path)
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
