"""HTTP for the WB client: auth header, rate limiting, retries, and mapping failures to `WBError`s.

Retries, and why non-idempotent requests are special:

- every call first takes a token from its group's bucket (`ratelimit.py`), so one account never exceeds
  WB's documented limits, whatever the number of concurrent callers;
- a 429 pauses the whole group for `X-Ratelimit-Retry` (else `Retry-After`, else `X-Ratelimit-Reset`)
  seconds, then the call is retried. This is safe for every method, writes included: WB's gateway
  refused the request before it reached the service;
- failures to connect (nothing was sent) are retried for every method;
- 5xx, timeouts and dropped connections after sending are retried with exponential back-off and jitter
  for idempotent requests only. For the others (the feedback answer POST) the request may have been
  applied and WB does not de-duplicate, so a blind retry could post twice: they raise `WBUnavailable`
  with `maybe_applied=True`, and the caller re-reads (see `WBClient.answer_feedback_confirmed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from otklik.adapters.wildberries.errors import (
    WBAuthError,
    WBBadRequest,
    WBForbidden,
    WBNotFound,
    WBProtocolError,
    WBRateLimited,
    WBUnavailable,
)
from otklik.adapters.wildberries.ratelimit import RateLimiters, RetryPolicy

log = logging.getLogger("otklik.adapters.wildberries")

M = TypeVar("M", bound=BaseModel)
AuthScheme = Literal["bearer", "raw"]


def normalise_token(token: str) -> str:
    """Strip whitespace and a pasted `Bearer ` prefix."""
    token = token.strip()
    return token[7:].strip() if token.lower().startswith("bearer ") else token


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds WB asks us to wait on a 429; `None` when it does not say."""
    for name in ("X-Ratelimit-Retry", "Retry-After", "X-Ratelimit-Reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(float(raw), 0.0)
        except ValueError:
            pass
        try:  # Retry-After may also be an HTTP date
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return None


def _error_details(resp: httpx.Response) -> tuple[str, str | None]:
    """WB's own explanation from either error envelope ([COMM]: `errorText`; gateway: problem+json)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300], None
    if isinstance(body, str):
        return body[:300], None
    if not isinstance(body, dict):
        return str(body)[:300], None
    text = str(body.get("errorText") or body.get("detail") or body.get("title") or body.get("message") or "")
    extra = body.get("additionalErrors")
    if extra and str(extra) not in text:
        text = f"{text} ({extra})" if text else str(extra)
    request_id = body.get("requestId")
    return text[:300], str(request_id) if request_id else None


class WBTransport:
    """One seller account's HTTP connection to WB. Not used directly: `WBClient` wraps it."""

    def __init__(
        self,
        token: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        limiters: RateLimiters,
        auth_scheme: AuthScheme,
        transport: httpx.AsyncBaseTransport | None,
        user_agent: str,
    ) -> None:
        token = normalise_token(token)
        if not token:
            raise ValueError("WB token is empty")
        self.retry = retry
        self.limiters = limiters
        auth = f"Bearer {token}" if auth_scheme == "bearer" else token
        self._http = httpx.AsyncClient(
            headers={"Authorization": auth, "User-Agent": user_agent, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        bucket_key: str,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        data: Mapping[str, str] | None = None,
        files: list[tuple[str, tuple[str | None, bytes, str | None]]] | None = None,
    ) -> httpx.Response:
        """Send with limits and retries; returns a 2xx response or raises a `WBError`. `data` and `files`
        make a `multipart/form-data` body (the buyer chat's message)."""
        resp = await self._send(
            bucket_key,
            method,
            url,
            what=what,
            params=params,
            json_body=json_body,
            idempotent=idempotent,
            data=data,
            files=files,
        )
        self._check(resp, what)
        return resp

    async def get_json(self, bucket_key: str, url: str, *, what: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.parse_json(await self.request(bucket_key, "GET", url, what=what, params=params), what)

    async def get_envelope(
        self, bucket_key: str, url: str, *, what: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """`data` of a feedbacks-style envelope `{"data":…,"error":false,"errorText":"",…}` ([COMM])."""
        return self.envelope_data(await self.request(bucket_key, "GET", url, what=what, params=params), what)

    async def _send(
        self,
        bucket_key: str,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
        data: Mapping[str, str] | None = None,
        files: list[tuple[str, tuple[str | None, bytes, str | None]]] | None = None,
    ) -> httpx.Response:
        """Send with rate limiting and retries; returns a response whose status is < 500 and ≠ 429."""
        policy, bucket = self.retry, self.limiters.bucket(bucket_key)
        failure, retry_after, status = "no attempt made", None, None
        for attempt in range(1, policy.max_attempts + 1):
            await bucket.acquire()
            try:
                if data is not None or files:
                    resp = await self._http.request(method, url, params=params, data=data, files=files)
                else:
                    resp = await self._http.request(method, url, params=params, json=json_body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                failure, status = f"cannot connect ({type(exc).__name__})", None  # nothing sent: retry
            except httpx.TransportError as exc:  # read timeout, dropped connection: maybe processed
                if not idempotent:
                    raise WBUnavailable(
                        f"{what}: {type(exc).__name__} after the request was sent; it may have been applied",
                        maybe_applied=True,
                    ) from exc
                failure, status = f"no response ({type(exc).__name__})", None
            else:
                status = resp.status_code
                if status == 429:
                    retry_after = _retry_after(resp.headers)
                    if retry_after is not None and retry_after > policy.max_retry_after:
                        bucket.pause(retry_after)  # other callers of this group must not hammer WB either
                        raise WBRateLimited(
                            f"{what}: WB asks to wait {retry_after:.0f} s (429)",
                            retry_after=retry_after,
                            status=429,
                        )
                    wait = retry_after if retry_after is not None else policy.backoff(attempt)
                    bucket.pause(wait)  # every caller of this group waits, then one retries
                    failure, retry_after = f"rate limited (429), waiting {wait:.2f} s", wait
                    log.warning("WB %s: %s (attempt %d)", what, failure, attempt)
                    continue
                if status < 500:
                    return resp
                if not idempotent:
                    raise WBUnavailable(
                        f"{what}: WB answered {status}; the request may have been applied",
                        maybe_applied=True,
                        status=status,
                    )
                failure = f"server error {status}"
            log.warning("WB %s: %s (attempt %d of %d)", what, failure, attempt, policy.max_attempts)
            if attempt < policy.max_attempts:
                await asyncio.sleep(policy.backoff(attempt))
        if status == 429:
            raise WBRateLimited(
                f"{what}: still rate limited after {policy.max_attempts} attempts",
                retry_after=retry_after,
                status=429,
            )
        raise WBUnavailable(f"{what}: {failure} after {policy.max_attempts} attempts", status=status)

    @staticmethod
    def _check(resp: httpx.Response, what: str) -> None:
        """Map a non-2xx status (< 500, ≠ 429) to the exception tree."""
        status = resp.status_code
        if 200 <= status < 300:
            return
        detail, rid = _error_details(resp)
        message = f"{what}: WB answered {status}: {detail or resp.reason_phrase}"
        if status in (401, 402):
            raise WBAuthError(message, reason=detail, status=status, request_id=rid)
        if status == 403:
            raise WBForbidden(message, reason=detail, status=status, request_id=rid)
        if status == 404:
            raise WBNotFound(message, error_text=detail, status=status, request_id=rid)
        if 400 <= status < 500:
            raise WBBadRequest(message, error_text=detail, status=status, request_id=rid)
        raise WBProtocolError(f"{what}: unexpected HTTP status {status}", status=status, request_id=rid)

    @staticmethod
    def parse_json(resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            snippet = resp.text.strip()[:80]
            ctype = resp.headers.get("content-type", "no content-type")
            raise WBProtocolError(
                f"{what}: WB returned a non-JSON response (HTTP {resp.status_code}, {ctype}): {snippet!r}",
                status=resp.status_code,
            ) from exc

    @classmethod
    def envelope_data(cls, resp: httpx.Response, what: str) -> Any:
        body = cls.parse_json(resp, what)
        if not isinstance(body, dict) or "data" not in body:
            raise WBProtocolError(f"{what}: WB response has no `data` envelope: {str(body)[:80]!r}")
        if body.get("error") is True:
            text = str(body.get("errorText") or "error flag set")
            raise WBBadRequest(f"{what}: WB reported an error: {text}", error_text=text, status=resp.status_code)
        return body["data"]


def parse_model(model: type[M], data: Any, what: str) -> M:
    """Validate a payload; a mismatch is a `WBProtocolError` naming the first bad fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:4]
        )
        raise WBProtocolError(f"{what}: WB response does not match the documented shape ({problems})") from exc
