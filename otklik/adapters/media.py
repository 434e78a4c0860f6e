"""Content-addressed media store on the local disk (uploads from buyers, files the bot sends)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from otklik.adapters.private_fs import private_dir, write_private

_SAFE_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class StoredMedia:
    media_id: str  # sha256 of the content
    size: int
    content_type: str
    filename: str | None


class MediaTooLarge(ValueError):
    """The file is over the configured size limit."""


class MediaStore:
    """Stores bytes under `<root>/<aa>/<sha256>`; the same content is stored once."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def save(self, data: bytes, content_type: str, filename: str | None = None) -> StoredMedia:
        if len(data) > self.max_bytes:
            raise MediaTooLarge(f"file is {len(data)} bytes, the limit is {self.max_bytes}")
        digest = await asyncio.to_thread(self._store, data)  # hashing 10 MB is CPU work: not on the loop
        return StoredMedia(digest, len(data), content_type, filename)

    def path(self, media_id: str) -> Path:
        if not _SAFE_ID.match(media_id):
            raise KeyError(media_id)
        return self.root / media_id[:2] / media_id

    async def read(self, media_id: str) -> bytes:
        path = self.path(media_id)
        if not path.exists():
            raise KeyError(media_id)
        return await asyncio.to_thread(path.read_bytes)

    def _store(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.exists():
            return
        private_dir(target.parent)
        tmp = target.with_suffix(".tmp")
        write_private(tmp, data)
        tmp.replace(target)
