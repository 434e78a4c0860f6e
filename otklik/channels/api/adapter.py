"""The API channel: a seller's own system (or n8n) exchanges messages with otklik over signed webhooks.

Outbound: `POST <url>` with JSON `{"recipient", "message", "idempotency_key"}`, headers
`Idempotency-Key` and `X-Otklik-Signature: sha256=<hex HMAC of the body>`. The receiver must treat a
repeated key as the same message (then a send interrupted by a crash is safely repeated).
Inbound: `POST /webhooks/api/{account}` with the same signature header and JSON
`{"id", "sender", "text"?, "button"?, "name"?, "language"?}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


class WebhookSender:
    kind = "webhook"
    supports_idempotency = True

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        per_second: float | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.limits = ChannelLimits(per_second=per_second)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        body = json.dumps(
            {"recipient": recipient, "message": message.to_dict(), "idempotency_key": idempotency_key},
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "X-Otklik-Signature": sign(self.secret, body),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SendError(f"timeout: {exc}") from None
        except httpx.TransportError as exc:
            raise SendError(f"connection failed: {exc}") from None
        if response.status_code == 429:
            raise SendError("rate limited", retry_after=_retry_after(response.headers.get("retry-after")))
        if response.status_code >= 500:
            raise SendError(f"receiver error {response.status_code}")
        if response.status_code >= 400:
            raise SendError(
                f"refused {response.status_code}: {response.text[:200]}",
                permanent=True,
                unreachable=response.status_code == 410,
            )
        return SendResult(external_id=_message_id(response))

    async def aclose(self) -> None:
        await self._client.aclose()


class WebhookInbound(BaseModel):
    """An inbound message from the seller's system."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    sender: str = Field(min_length=1, max_length=200)
    text: str | None = Field(None, max_length=4096)
    button: str | None = Field(None, max_length=256)
    name: str | None = Field(None, max_length=100)
    language: str | None = Field(None, max_length=8)

    @model_validator(mode="after")
    def _one_of(self) -> WebhookInbound:
        if (self.text is None) == (self.button is None):
            raise ValueError("send exactly one of 'text' or 'button'")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self

    def event(self, account_id: int) -> InboundEvent:
        kind = EventKind.BUTTON if self.button is not None else EventKind.TEXT
        return InboundEvent(
            account_id,
            self.id,
            self.sender,
            kind,
            text=self.text,
            payload=self.button,
            sender_name=self.name,
            language=self.language,
        )


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 1), 3600.0))
    except ValueError:
        return 1.0


def _message_id(response: httpx.Response) -> str | None:
    try:
        data: Any = response.json()
    except ValueError:
        return None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


def sender_for(account: Any, secret: str | None, _ctx: Any) -> WebhookSender:
    """The kind's sender factory: the account's URL, its signing secret, its pace (`per_second`)."""
    per_second = account.config.get("per_second")
    return WebhookSender(str(account.config["url"]), secret or "", per_second=float(per_second) if per_second else None)
