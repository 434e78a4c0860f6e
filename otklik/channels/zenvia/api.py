"""A small client of Zenvia's API v2 (httpx): sending on the WhatsApp channel, subscriptions (webhooks) and the
templates list, and the classification of its errors. Authentication is the `X-API-TOKEN` header.

The base URL is a setting (`OTKLIK_ZENVIA_API_URL`, default `https://api.zenvia.com`) or the account's own
`api_url`, so the fake (`otklik/testing/fake_zenvia.py`) or a proxy stands in for Zenvia.
"""

from __future__ import annotations

from typing import Any

import httpx

from otklik.core.channel import SendError

DEFAULT_API_URL = "https://api.zenvia.com"
TOKEN_HEADER = "X-API-TOKEN"  # noqa: S105 - a header name
BROKEN_TOKEN_WAIT = 300.0


class ZenviaError(Exception):
    """An error answer of Zenvia: the HTTP status, Zenvia's `code` (e.g. "VALIDATION_ERROR") and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"zenvia {status} {code}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.retry_after: float | None = None

    @property
    def token_invalid(self) -> bool:
        return self.status in (401, 403)


class TokenRejected(SendError):
    """Zenvia refused the API token (401 / 403): the account is marked broken; sends wait."""


def classify(error: ZenviaError, retry_after: float | None = None) -> SendError:
    """429 → wait (its Retry-After, else 2 s); 5xx → transient; a refused token → wait, account broken;
    any other 4xx → permanent (a bad recipient, a template that does not exist: retrying cannot help)."""
    text = str(error)[:480]
    if error.token_invalid:
        return TokenRejected(text, retry_after=BROKEN_TOKEN_WAIT)
    if error.status == 429:
        return SendError(text, retry_after=retry_after or 2.0)
    if 400 <= error.status < 500:
        return SendError(text, permanent=True)
    return SendError(text)


def _error_of(response: httpx.Response) -> ZenviaError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return ZenviaError(response.status_code, str(body.get("code") or "")[:60], str(body.get("message") or "")[:300])
    return ZenviaError(response.status_code, "", response.text[:200] or response.reason_phrase)


def retry_after_of(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return min(max(float(raw), 0.0), 3600.0) if raw else None
    except ValueError:
        return None


class ZenviaClient:
    """One API token against one base URL."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, client: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own = client is None
        self.http = client or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=50))

    @property
    def _auth(self) -> dict[str, str]:
        return {TOKEN_HEADER: self.token}

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    async def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            error = _error_of(response)
            error.retry_after = retry_after_of(response)
            raise error
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ZenviaError(response.status_code, "", "the answer is not JSON") from None

    async def send(self, sender: str, to: str, contents: list[dict[str, Any]]) -> str:
        """POST /v2/channels/whatsapp/messages; the id Zenvia gave the message (statuses name it `messageId`)."""
        body = {"from": sender, "to": to, "contents": contents}
        answer = await self._json(
            await self.http.post(f"{self.base_url}/v2/channels/whatsapp/messages", json=body, headers=self._auth)
        )
        if not isinstance(answer, dict) or not answer.get("id"):
            raise ZenviaError(200, "", "the answer names no message id")
        return str(answer["id"])[:200]

    async def subscriptions(self) -> list[dict[str, Any]]:
        """GET /v2/subscriptions (also the cheap token check: 401 on a bad token)."""
        answer = await self._json(await self.http.get(f"{self.base_url}/v2/subscriptions", headers=self._auth))
        return [s for s in answer if isinstance(s, dict)] if isinstance(answer, list) else []

    async def subscribe(self, event_type: str, url: str, headers: dict[str, str], criteria: dict[str, str]) -> str:
        body = {
            "eventType": event_type,
            "webhook": {"url": url, "headers": headers},
            "criteria": criteria,
            "status": "ACTIVE",
            "version": "v2",
        }
        answer = await self._json(
            await self.http.post(f"{self.base_url}/v2/subscriptions", json=body, headers=self._auth)
        )
        return str(answer.get("id") or "") if isinstance(answer, dict) else ""

    async def unsubscribe(self, subscription_id: str) -> None:
        await self._json(
            await self.http.delete(f"{self.base_url}/v2/subscriptions/{subscription_id}", headers=self._auth)
        )

    async def templates(self) -> list[dict[str, Any]]:
        """GET /v2/templates: every template of the account (WhatsApp ones are picked by the caller)."""
        answer = await self._json(await self.http.get(f"{self.base_url}/v2/templates", headers=self._auth))
        return [t for t in answer if isinstance(t, dict)] if isinstance(answer, list) else []

    async def download(self, url: str, max_bytes: int) -> tuple[bytes, str]:
        """A file a customer sent (its `fileUrl`); `ValueError("too_large")` past `max_bytes`."""
        received = bytearray()
        async with self.http.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error_of(response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ValueError("too_large")
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > max_bytes:
                    raise ValueError("too_large")
            mime = response.headers.get("content-type", "application/octet-stream").split(";")[0]
        return bytes(received), mime[:100]
