"""Signed, expiring links to files of the media store, for providers that fetch what they send by URL (Zenvia's
`fileUrl`, Instagram's attachment `payload.url`): `<public URL><prefix>/<media id>?t=<type>&exp=<epoch>&sig=<hmac>`.

The HMAC-SHA256 (keyed with a key derived from the install's `secret_key`) covers the media id, the content
type and the expiry, so a link cannot be changed into another file, type or lifetime; media ids are sha256
digests (unguessable). A channel kind serves the path with `serve_link` in its own router."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import urlencode

from fastapi.responses import Response

from otklik.adapters.media import MediaStore

DEFAULT_TTL = 24 * 3600  # seconds: a provider may fetch late (queues, retries)
_TYPE = re.compile(r"^[a-z0-9.+\-]{1,40}/[a-z0-9.+\-]{1,80}$")


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"otklik-media-links\0" + secret_key.encode()).digest()


def _sig(secret_key: str, media_id: str, content_type: str, exp: int) -> str:
    message = f"{media_id}\n{content_type}\n{exp}".encode()
    return hmac.new(_key(secret_key), message, hashlib.sha256).hexdigest()


def media_link(public_url: str, prefix: str, secret_key: str, media_id: str, content_type: str, now: datetime,
               ttl: int = DEFAULT_TTL) -> str:  # fmt: skip
    content_type = content_type if _TYPE.match(content_type or "") else "application/octet-stream"
    exp = int(now.timestamp()) + ttl
    query = urlencode({"t": content_type, "exp": exp, "sig": _sig(secret_key, media_id, content_type, exp)})
    return f"{public_url.rstrip('/')}{prefix}/{media_id}?{query}"


def link_valid(secret_key: str, media_id: str, content_type: str, exp: str, sig: str, now: datetime) -> bool:
    if not exp.isdigit() or len(exp) > 12 or not _TYPE.match(content_type) or len(sig) != 64:
        return False
    if int(exp) < now.timestamp():
        return False
    return hmac.compare_digest(_sig(secret_key, media_id, content_type, int(exp)).encode(), sig.encode())


async def serve_link(
    media: MediaStore, secret_key: str, media_id: str, query: dict[str, str], now: datetime
) -> Response:
    """The file, or 404 for a bad, expired or unknown link (never saying which)."""
    content_type = query.get("t", "")
    if not link_valid(secret_key, media_id, content_type, query.get("exp", ""), query.get("sig", ""), now):
        return Response(b"not found", status_code=404, media_type="text/plain")
    try:
        data = await media.read(media_id)
    except KeyError:
        return Response(b"not found", status_code=404, media_type="text/plain")
    if any(word in content_type for word in ("html", "xml", "javascript", "text/")):  # never rendered on our origin
        content_type = "application/octet-stream"
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600",
                                                            "X-Content-Type-Options": "nosniff"})  # fmt: skip
