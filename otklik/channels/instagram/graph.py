"""A small client of Meta's Graph API for Instagram Direct through the Messenger Platform (httpx), and the
classification of its errors. The base URL carries the version (`OTKLIK_INSTAGRAM_API_URL`, default
`https://graph.facebook.com/v21.0`) so a proxy or the fake (`otklik/testing/fake_instagram.py`) stands in."""

from __future__ import annotations

from typing import Any

import httpx

from otklik.core.channel import SendError

DEFAULT_API_URL = "https://graph.facebook.com/v21.0"
RETRY_LATER = {4: 60.0, 17: 60.0, 32: 60.0, 613: 60.0}
OUTSIDE_WINDOW_SUBCODES = {2018278, 2534022}
NOT_DELIVERED = {551, 100, 10, 200, 230, 2018001, 2018108}
TOKEN_INVALID = {190, 102}
BROKEN_TOKEN_WAIT = 300.0


class GraphError(Exception):
    def __init__(self, status: int, code: int | None, message: str, subcode: int | None = None) -> None:
        super().__init__(f"instagram {code or status}{f'/{subcode}' if subcode else ''}: {message}")
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message

    @property
    def token_invalid(self) -> bool:
        return self.code in TOKEN_INVALID or self.status == 401


class TokenRejected(SendError):
    """The page access token was refused: the account is marked broken; sends wait."""


def classify(error: GraphError) -> SendError:
    """Outside the window (10 / 2018278) → held; rate limits → wait; a refused token → wait, account broken;
    a user we cannot reach (551) and other 4xx → permanent; 5xx → transient."""
    text = str(error)[:480]
    if error.token_invalid:
        return TokenRejected(text, retry_after=BROKEN_TOKEN_WAIT)
    if error.subcode in OUTSIDE_WINDOW_SUBCODES:
        return SendError(f"held: {text}", held=True)
    if error.code in RETRY_LATER:
        return SendError(text, retry_after=RETRY_LATER[error.code])
    if error.status == 429:
        return SendError(text, retry_after=2.0)
    if error.code in NOT_DELIVERED or 400 <= error.status < 500:
        return SendError(text, permanent=True)
    return SendError(text)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_of(response: httpx.Response) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(response.status_code, None, response.text[:200] or response.reason_phrase)
    return GraphError(
        response.status_code,
        _int(error.get("code")),
        str(error.get("message") or "")[:300],
        _int(error.get("error_subcode")),
    )


class GraphClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, client: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own = client is None
        self.http = client or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=50))

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

    async def page(self, page_id: str) -> dict[str, Any]:
        """The token check: the page and its Instagram professional account."""
        params = {"fields": "name,instagram_business_account"}
        return await self._json(await self.http.get(f"{self.base_url}/{page_id}", params=params, headers=self._auth))

    async def send(self, page_id: str, body: dict[str, Any]) -> str:
        """POST /{page_id}/messages; the `message_id` Meta gave the message."""
        answer = await self._json(
            await self.http.post(f"{self.base_url}/{page_id}/messages", json=body, headers=self._auth)
        )
        if not answer.get("message_id"):
            raise GraphError(200, None, "the answer names no message id")
        return str(answer["message_id"])[:200]

    async def mark_seen(self, page_id: str, igsid: str) -> None:
        body = {"recipient": {"id": igsid}, "sender_action": "mark_seen"}
        await self._json(await self.http.post(f"{self.base_url}/{page_id}/messages", json=body, headers=self._auth))

    async def download(self, url: str, max_bytes: int) -> tuple[bytes, str]:
        """An attachment's CDN URL (no token: Meta signs those URLs); `ValueError("too_large")` past the limit."""
        received = bytearray()
        async with self.http.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error_of(response)
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > max_bytes:
                    raise ValueError("too_large")
            mime = response.headers.get("content-type", "application/octet-stream").split(";")[0]
        return bytes(received), mime[:100]
