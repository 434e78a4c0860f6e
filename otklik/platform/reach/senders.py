"""How a text leaves as SMS: the `SmsSender` protocol and its connectors.

- `SmsRuSender`: SMS.ru's HTTP API — `POST {sms_ru_url}/sms/send` (form: `api_id`, `to`, `msg`, `from`,
  `json=1`) answering `{"status": "OK", "status_code": 100, "sms": {"79171234567": {"status": "OK",
  "status_code": 100, "sms_id": "000000-10000000"}}, "balance": 4122.56}`, and `sms/status` (`sms_id`)
  answering `{"status": "OK", "sms": {"<id>": {"status": "OK", "status_code": 103}}}` (103 delivered;
  104–108 and 150 not delivered; 100–102 still on the way).
- `HttpSmsSender`: any gateway with a plain HTTP call — URL, method, a JSON or form body template whose
  string values may hold `{phone}`, `{text}` and `{sender}`, an optional auth header, and a success rule
  (2xx, plus optionally `field=value` in the JSON answer) and where the message id is (`id_path`).

Failures are `core.channel.SendError`: `retry_after` on 429, transient on 5xx, timeouts and connection
errors, `permanent` on a refused number, text or account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from otklik.core.channel import SendError

_PLACEHOLDER = re.compile(r"\{(phone|phone_digits|text|sender)\}")
DELIVERED, UNDELIVERED, PENDING = "delivered", "failed", "pending"


@dataclass(frozen=True, slots=True)
class SmsResult:
    provider_id: str | None
    parts: int | None = None


class SmsSender(Protocol):
    name: str
    can_poll: bool  # `status` tells whether a message was delivered

    async def send(self, phone: str, text: str) -> SmsResult: ...

    async def status(self, provider_ids: list[str]) -> dict[str, str]: ...  # id -> delivered | failed | pending

    async def aclose(self) -> None: ...


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(float(headers.get("Retry-After", "30")), 0.0)
    except ValueError:
        return 30.0


def http_error(status: int, headers: Mapping[str, str], what: str) -> SendError:
    if status == 429:
        return SendError(f"{what}: 429 too many requests", retry_after=_retry_after(headers))
    if status >= 500 or status == 408:
        return SendError(f"{what}: HTTP {status}")
    return SendError(f"{what}: HTTP {status}", permanent=True)


class _Http:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def call(self, what: str, method: str, url: str, **kwargs: Any) -> tuple[int, Mapping[str, str], str]:
        try:
            async with self.session().request(method, url, allow_redirects=False, **kwargs) as response:
                body = await response.content.read(64 * 1024)
                return response.status, dict(response.headers), body.decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise SendError(f"{what}: {type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# SMS.ru's answer codes (https://sms.ru/api/send): account and request errors, and per-message ones
SMSRU_TRANSIENT = {220, 500}  # service temporarily unavailable, server error
SMSRU_LIMIT = {206, 230, 231, 232, 233}  # daily / per-number / repeated-message limits: later
SMSRU_DELIVERED = {103, 110}  # delivered, read
SMSRU_UNDELIVERED = {104, 105, 106, 107, 108, 150}


class SmsRuSender:
    name = "smsru"
    can_poll = True

    def __init__(
        self, api_id: str, *, sender: str = "", base_url: str = "https://sms.ru", timeout: float = 30.0
    ) -> None:
        self.api_id, self.sender, self.base_url = api_id, sender, base_url.rstrip("/")
        self.http = _Http(timeout)

    async def _json(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        status, headers, body = await self.http.call("sms.ru", "POST", f"{self.base_url}{path}", data=data)
        if status != 200:
            raise http_error(status, headers, "sms.ru")
        try:
            answer = json.loads(body)
        except ValueError:
            raise SendError(f"sms.ru: not JSON: {body[:80]!r}") from None
        if not isinstance(answer, dict):
            raise SendError("sms.ru: unexpected answer")
        return answer

    @staticmethod
    def _refused(answer: Mapping[str, Any]) -> SendError:
        code = int(answer.get("status_code") or 0)
        text = f"sms.ru: {code} {str(answer.get('status_text') or '')[:200]}".strip()
        if code in SMSRU_TRANSIENT:
            return SendError(text)
        if code in SMSRU_LIMIT:
            return SendError(text, retry_after=3600.0)
        return SendError(text, permanent=True)  # 200 bad api_id, 201 no money, 202 bad number, 207 no route …

    async def send(self, phone: str, text: str) -> SmsResult:
        to = phone.lstrip("+")
        data = {"api_id": self.api_id, "to": to, "msg": text, "json": "1"}
        if self.sender:
            data["from"] = self.sender
        answer = await self._json("/sms/send", data)
        if answer.get("status") != "OK":
            raise self._refused(answer)
        sms = answer.get("sms")
        one = sms.get(to) if isinstance(sms, dict) else None
        if not isinstance(one, dict):
            raise SendError("sms.ru: the answer names no message for the number")
        if one.get("status") != "OK":
            raise self._refused(one)
        sms_id = str(one.get("sms_id") or "")[:120]
        if not sms_id:
            raise SendError("sms.ru: the answer has no sms_id")
        return SmsResult(sms_id)

    async def status(self, provider_ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for sms_id in provider_ids:
            answer = await self._json("/sms/status", {"api_id": self.api_id, "sms_id": sms_id, "json": "1"})
            one = (answer.get("sms") or {}).get(sms_id) if isinstance(answer.get("sms"), dict) else None
            code = int(one.get("status_code") or 0) if isinstance(one, dict) else 0
            out[sms_id] = (
                DELIVERED
                if code in SMSRU_DELIVERED
                else UNDELIVERED
                if code in SMSRU_UNDELIVERED or code == -1
                else PENDING
            )
        return out

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """A generic gateway. `body` is a JSON object (format "json") or `key=value` pairs (format "form"), each
    string value a template of `{phone}` (E.164), `{phone_digits}`, `{text}`, `{sender}`; never raw string
    concatenation, so a text cannot break the body. `auth_header` ("Authorization") gets the secret
    (e.g. "Bearer …"). Success: a 2xx answer and, with `success`, "field=value" in its JSON (dots walk
    nested objects). `id_path`: where the message id is ("id", "messages.0.id")."""

    url: str
    method: str = "POST"
    format: str = "json"
    body: Mapping[str, Any] = field(default_factory=dict)
    auth_header: str = ""
    success: str = ""
    id_path: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HttpConfig:
        return cls(
            url=str(data.get("url") or ""), method=str(data.get("method") or "POST").upper(),
            format=str(data.get("format") or "json"), body=dict(data.get("body") or {}),
            auth_header=str(data.get("auth_header") or ""), success=str(data.get("success") or ""),
            id_path=str(data.get("id_path") or ""),
        )  # fmt: skip


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):  # one pass: a text holding "{sender}" stays as written
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def dig(data: Any, path: str) -> Any:
    for step in path.split(".") if path else []:
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


class HttpSmsSender:
    name = "http"
    can_poll = False

    def __init__(self, config: HttpConfig, *, secret: str = "", sender: str = "", timeout: float = 30.0) -> None:
        self.config, self.secret, self.sender = config, secret, sender
        self.http = _Http(timeout)

    async def send(self, phone: str, text: str) -> SmsResult:
        c = self.config
        body = _fill(c.body, {"phone": phone, "phone_digits": phone.lstrip("+"), "text": text, "sender": self.sender})
        headers = {c.auth_header: self.secret} if c.auth_header and self.secret else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if c.method == "GET":
            kwargs["params"] = {k: str(v) for k, v in body.items()}
        elif c.format == "form":
            kwargs["data"] = {k: str(v) for k, v in body.items()}
        else:
            kwargs["json"] = body
        status, answer_headers, answer = await self.http.call("sms gateway", c.method, c.url, **kwargs)
        if not 200 <= status < 300:
            raise http_error(status, answer_headers, "sms gateway")
        try:
            parsed: Any = json.loads(answer) if answer.strip() else None
        except ValueError:
            parsed = None
        if c.success:
            name, _, wanted = c.success.partition("=")
            got = dig(parsed, name.strip())
            if got is None or str(got) != wanted.strip():
                raise SendError(f"sms gateway: refused ({name.strip()}={str(got)[:80]!r})", permanent=True)
        provider_id = dig(parsed, c.id_path) if c.id_path else None
        return SmsResult(str(provider_id)[:120] if provider_id is not None else None)

    async def status(self, provider_ids: list[str]) -> dict[str, str]:
        return {i: PENDING for i in provider_ids}

    async def aclose(self) -> None:
        await self.http.aclose()


def parse_smsru_callback(body: bytes, limit: int = 200) -> dict[str, str]:
    """SMS.ru's status callback: a form of `data[0]`, `data[1]`, … each "sms_status\n<sms_id>\n<code>\n<unix
    time>" (other kinds of lines, e.g. "callback_check", are ignored) → sms id → delivered | failed | pending.
    Malformed entries are skipped; at most `limit` are read."""
    from urllib.parse import parse_qsl

    try:
        fields = parse_qsl(body.decode("utf-8", "replace"), max_num_fields=limit)
    except ValueError:
        return {}
    out: dict[str, str] = {}
    for key, value in fields:
        lines = [line.strip() for line in value.splitlines()]
        if not key.startswith("data[") or len(lines) < 3 or lines[0] != "sms_status":
            continue
        sms_id, code = lines[1][:120], lines[2]
        if not sms_id or not code.lstrip("-").isdigit():
            continue
        number = int(code)
        out[sms_id] = (
            DELIVERED if number in SMSRU_DELIVERED else UNDELIVERED if number in SMSRU_UNDELIVERED else PENDING
        )
    return out
