"""A small client of Meta's Graph API for the WhatsApp Cloud API (httpx), and the classification of its errors.

The base URL carries the API version (`OTKLIK_WHATSAPP_API_URL`, default `https://graph.facebook.com/v21.0`),
so a self-hosted proxy or the fake (`otklik/testing/fake_whatsapp.py`) stands in for Meta.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from otklik.core.channel import SendError

DEFAULT_API_URL = "https://graph.facebook.com/v21.0"

# Meta's codes (reference §2.7), by what the dispatcher should do with them
RETRY_LATER = {4: 60.0, 80007: 60.0, 130429: 2.0, 131056: 6.0, 131057: 60.0}
NEEDS_TEMPLATE = {131047}
NOT_DELIVERED = {131026, 131049, 131050, 130472, 131051, 131052, 131053, 132000, 132001, 132005, 132007, 132012,
                 132015, 132016, 133010, 100, 368}  # fmt: skip
SPAM_LIMIT = 131048
TOKEN_INVALID = {190}
SPAM_PAUSE_SECONDS = 3600.0
BROKEN_TOKEN_WAIT = 300.0


class GraphError(Exception):
    """An error answer of the Graph API: `code` (Meta's), the HTTP status and Meta's message."""

    def __init__(self, status: int, code: int | None, message: str, details: str = "") -> None:
        super().__init__(f"whatsapp {code or status}: {message}{f' ({details})' if details else ''}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @property
    def token_invalid(self) -> bool:
        return self.code in TOKEN_INVALID or self.status == 401


class TokenRejected(SendError):
    """The access token was refused (190 / 401): the account is marked broken; sends wait."""


class SpamLimited(SendError):
    """131048: Meta limits the number for spam; marketing sends of the account pause."""


class NeedsTemplate(SendError):
    """131047: the 24-hour window is closed at Meta's end; the row is held."""


def classify(error: GraphError) -> SendError:
    """What the dispatcher does with a refused send (docs/channels/whatsapp.md, "Limits and errors")."""
    code = error.code
    text = str(error)[:480]
    if error.token_invalid:
        return TokenRejected(text, retry_after=BROKEN_TOKEN_WAIT)
    if code in RETRY_LATER:
        return SendError(text, retry_after=RETRY_LATER[code])
    if code in NEEDS_TEMPLATE:
        return NeedsTemplate(f"held: {text}", held=True)
    if code == SPAM_LIMIT:
        return SpamLimited(text, retry_after=SPAM_PAUSE_SECONDS)
    if code in NOT_DELIVERED or (400 <= error.status < 500 and error.status != 429):
        return SendError(text, permanent=True)
    if error.status == 429:
        return SendError(text, retry_after=2.0)
    return SendError(text)  # 5xx, 131000 "something went wrong": retried with back-off


def _error_of(response: httpx.Response) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(response.status_code, None, response.text[:200] or response.reason_phrase)
    code = error.get("code")
    data = error.get("error_data")
    details = str(data.get("details") or "") if isinstance(data, dict) else ""
    return GraphError(
        response.status_code,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        str(error.get("message") or "")[:300],
        details[:300],
    )


@dataclass(frozen=True, slots=True)
class MediaInfo:
    url: str
    mime_type: str
    file_size: int | None


class GraphClient:
    """One access token against one Graph base URL."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, client: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own = client is None
        self.http = client or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100))

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    async def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise _error_of(response)
        try:
            body = response.json()
        except ValueError:
            raise GraphError(response.status_code, None, "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise GraphError(response.status_code, None, "the answer is not a JSON object")
        return body

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._json(await self.http.get(f"{self.base_url}/{path}", params=params, headers=self._auth))

    async def send(self, phone_number_id: str, body: dict[str, Any]) -> str:
        """POST /{phone_number_id}/messages; the wamid Meta gave the message."""
        answer = await self._json(
            await self.http.post(f"{self.base_url}/{phone_number_id}/messages", json=body, headers=self._auth)
        )
        messages = answer.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            raise GraphError(200, None, "the answer names no message id")
        return str(messages[0].get("id") or "")

    async def mark_read(self, phone_number_id: str, wamid: str) -> None:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        await self._json(
            await self.http.post(f"{self.base_url}/{phone_number_id}/messages", json=body, headers=self._auth)
        )

    async def upload(self, phone_number_id: str, data: bytes, mime_type: str, filename: str) -> str:
        """POST /{phone_number_id}/media (multipart); the media id to send by."""
        answer = await self._json(
            await self.http.post(
                f"{self.base_url}/{phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": mime_type},
                files={"file": (filename, data, mime_type)},
                headers=self._auth,
            )
        )
        return str(answer.get("id") or "")

    async def media_info(self, media_id: str) -> MediaInfo:
        answer = await self.get(media_id)
        size = answer.get("file_size")
        return MediaInfo(
            str(answer.get("url") or ""),
            str(answer.get("mime_type") or "application/octet-stream"),
            int(size) if isinstance(size, int) and not isinstance(size, bool) else None,
        )

    async def download(self, url: str, max_bytes: int) -> bytes:
        """The media at its (5-minute) URL, with the same Bearer token; `ValueError` past `max_bytes`."""
        received = bytearray()
        async with self.http.stream("GET", url, headers=self._auth) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error_of(response)
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > max_bytes:
                    raise ValueError("too_large")
        return bytes(received)

    async def templates(self, waba_id: str, *, page_size: int = 100, max_pages: int = 50) -> list[dict[str, Any]]:
        """Every template of the WABA (`GET /{waba_id}/message_templates`, following the `after` cursor)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size}
        for _ in range(max_pages):
            answer = await self.get(f"{waba_id}/message_templates", params)
            data = answer.get("data")
            if isinstance(data, list):
                out += [t for t in data if isinstance(t, dict)]
            paging = answer.get("paging") if isinstance(answer.get("paging"), dict) else {}
            after = (paging.get("cursors") or {}).get("after") if isinstance(paging, dict) else None
            if not (isinstance(paging, dict) and paging.get("next")) or not after:
                break
            params = {"limit": page_size, "after": after}
        return out
