"""Async client of the Wildberries seller API: ping, feedbacks, product cards (barcodes).

Shapes, limits and quirks follow /work/shared/reference/wildberries-api.md ([COMM], [PROD], [GEN]).

Retries, and why the answer POST is special:

- every call first takes a token from its group's bucket (`ratelimit.py`), so one client never exceeds
  WB's documented limits, whatever the number of concurrent callers;
- a 429 pauses the whole group for `X-Ratelimit-Retry` (else `Retry-After`, else `X-Ratelimit-Reset`)
  seconds, then the call is retried; this is safe for every method, because WB's gateway refused the
  request before it reached the service;
- 5xx, timeouts and dropped connections are retried with exponential back-off and jitter for reads only
  (GETs, and the read-only cards POST). `POST /api/v1/feedbacks/answer` is retried only on 429 and on
  failures to connect (nothing was sent): after a 5xx or a timeout the answer may have landed, and WB does
  not de-duplicate, so a blind retry could post it twice. Such failures raise `WBUnavailable` with
  `maybe_applied=True`; `answer_feedback_confirmed()` resolves them by re-reading the feedback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from otklik.adapters.wildberries.errors import (
    WBAnswerNotConfirmed,
    WBAuthError,
    WBBadRequest,
    WBError,
    WBForbidden,
    WBNotFound,
    WBProtocolError,
    WBRateLimited,
    WBUnavailable,
)
from otklik.adapters.wildberries.hosts import WBHosts
from otklik.adapters.wildberries.ratelimit import (
    CONTENT,
    FEEDBACKS,
    PING,
    RateLimit,
    RateLimiters,
    RetryPolicy,
)
from otklik.adapters.wildberries.schemas import (
    BarcodeMatch,
    Card,
    CardBarcodes,
    CardsCursor,
    CardsPage,
    Feedback,
    FeedbackOrder,
    FeedbacksPage,
    NewFeedbacksQuestions,
    Ping,
    UnansweredCount,
)

log = logging.getLogger(__name__)

FEEDBACKS_MAX_TAKE = 5000  # [COMM] GET /api/v1/feedbacks: take max 5 000
FEEDBACKS_MAX_SKIP = 199_990  # [COMM] skip max 199 990
CARDS_MAX_LIMIT = 100  # [PROD] cursor.limit ≤ 100
ANSWER_MIN_LEN, ANSWER_MAX_LEN = 2, 5000  # [COMM] answer text 2–5000 characters

M = TypeVar("M", bound=BaseModel)
DateLike = datetime | int
AuthScheme = Literal["bearer", "raw"]


def _unix(value: DateLike | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp())


def _normalise_token(token: str) -> str:
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


class WBClient:
    """One seller's connection to the WB API. Use as `async with WBClient(token) as wb: ...`.

    - `hosts`: per-API base URLs; `WBHosts.single(url)` sends everything to one server (fakes, demos).
    - `auth_scheme`: WB's knowledge base shows `Authorization: Bearer <token>`; the OpenAPI files declare
      an apiKey in `Authorization` and most integrations send the bare token. Both are reported to work;
      `"bearer"` (default) follows the current official text, `"raw"` sends the bare token.
    - `limiters`: share one `RateLimiters` between clients of the same seller account (WB limits per
      account); `limits` overrides single groups (e.g. `BASE_TOKEN_LIMITS` for a base token).
    - `transport`: an httpx transport, e.g. for tests.
    """

    def __init__(
        self,
        token: str,
        *,
        hosts: WBHosts | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        limiters: RateLimiters | None = None,
        limits: Mapping[str, RateLimit] | None = None,
        auth_scheme: AuthScheme = "bearer",
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "otklik",
        feedbacks_max_skip: int = FEEDBACKS_MAX_SKIP,
    ) -> None:
        token = _normalise_token(token)
        if not token:
            raise ValueError("WB token is empty")
        self.hosts = hosts or WBHosts()
        self.retry = retry or RetryPolicy()
        self.limiters = limiters or RateLimiters(limits)
        self.feedbacks_max_skip = feedbacks_max_skip
        auth = f"Bearer {token}" if auth_scheme == "bearer" else token
        self._http = httpx.AsyncClient(
            headers={"Authorization": auth, "User-Agent": user_agent, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never show the token
        return f"WBClient(feedbacks={self.hosts.feedbacks!r}, content={self.hosts.content!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WBClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- transport ----------------------------------------------------------------------------------

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
    ) -> httpx.Response:
        """Send with rate limiting and retries; returns a response whose status is < 500 and ≠ 429."""
        policy, bucket = self.retry, self.limiters.bucket(bucket_key)
        failure, retry_after, status = "no attempt made", None, None
        for attempt in range(1, policy.max_attempts + 1):
            await bucket.acquire()
            try:
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
    def _json(resp: httpx.Response, what: str) -> Any:
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
    def _envelope_data(cls, resp: httpx.Response, what: str) -> Any:
        """`data` of the feedbacks envelope `{"data":…,"error":false,"errorText":"",…}` ([COMM])."""
        body = cls._json(resp, what)
        if not isinstance(body, dict) or "data" not in body:
            raise WBProtocolError(f"{what}: WB response has no `data` envelope: {str(body)[:80]!r}")
        if body.get("error") is True:
            text = str(body.get("errorText") or "error flag set")
            raise WBBadRequest(
                f"{what}: WB reported an error: {text}", error_text=text, status=resp.status_code
            )
        return body["data"]

    @staticmethod
    def _model(model: type[M], data: Any, what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:4]
            )
            raise WBProtocolError(
                f"{what}: WB response does not match the documented shape ({problems})"
            ) from exc

    async def _get_feedbacks_api(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        url = f"{self.hosts.feedbacks}{path}"
        resp = await self._send(FEEDBACKS, "GET", url, what=what, params=params)
        self._check(resp, what)
        return self._envelope_data(resp, what)

    # --- common ---------------------------------------------------------------------------------------

    async def ping(self, api: str = "common") -> Ping:
        """`GET /ping` on one API's host: checks the token, the host and the category ([GEN]).

        WB allows 3 pings per 30 s per host and blocks scripts that ping more: call it when a seller
        saves a token, not in a loop.
        """
        base = self.hosts.for_api(api)
        resp = await self._send(f"{PING}:{base}", "GET", f"{base}/ping", what="ping")
        self._check(resp, "ping")
        return self._model(Ping, self._json(resp, "ping"), "ping")

    # --- feedbacks ------------------------------------------------------------------------------------

    async def has_new_feedbacks_or_questions(self) -> NewFeedbacksQuestions:
        """The cheap "anything new?" poll: `GET /api/v1/new-feedbacks-questions`."""
        data = await self._get_feedbacks_api("/api/v1/new-feedbacks-questions", "new feedbacks check")
        return self._model(NewFeedbacksQuestions, data, "new feedbacks check")

    async def count_unanswered_feedbacks(self) -> UnansweredCount:
        data = await self._get_feedbacks_api("/api/v1/feedbacks/count-unanswered", "unanswered count")
        return self._model(UnansweredCount, data, "unanswered count")

    async def count_feedbacks(
        self,
        *,
        is_answered: bool | None = None,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
    ) -> int:
        params = _drop_none(isAnswered=_bool(is_answered), dateFrom=_unix(date_from), dateTo=_unix(date_to))
        data = await self._get_feedbacks_api("/api/v1/feedbacks/count", "feedbacks count", params)
        if isinstance(data, bool) or not isinstance(data, int):
            raise WBProtocolError(f"feedbacks count: expected an integer in `data`, got {data!r:.80}")
        return data

    async def list_feedbacks(
        self,
        *,
        is_answered: bool,
        take: int = FEEDBACKS_MAX_TAKE,
        skip: int = 0,
        nm_id: int | None = None,
        order: FeedbackOrder | None = None,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
    ) -> FeedbacksPage:
        """One page of `GET /api/v1/feedbacks` (`is_answered=False`: unprocessed feedbacks)."""
        if not 1 <= take <= FEEDBACKS_MAX_TAKE:
            raise ValueError(f"take must be 1..{FEEDBACKS_MAX_TAKE}, got {take}")
        if not 0 <= skip <= self.feedbacks_max_skip:
            raise ValueError(f"skip must be 0..{self.feedbacks_max_skip}, got {skip}")
        params = _drop_none(
            isAnswered=_bool(is_answered),
            take=take,
            skip=skip,
            nmId=nm_id,
            order=order,
            dateFrom=_unix(date_from),
            dateTo=_unix(date_to),
        )
        data = await self._get_feedbacks_api("/api/v1/feedbacks", "feedbacks list", params)
        return self._model(FeedbacksPage, data, "feedbacks list")

    async def iter_feedbacks(
        self,
        *,
        is_answered: bool,
        nm_id: int | None = None,
        order: FeedbackOrder = "dateAsc",
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
        page_size: int = FEEDBACKS_MAX_TAKE,
    ) -> AsyncIterator[Feedback]:
        """Every feedback matching the filters, each once, paging with take/skip.

        WB caps `skip` at 199 990. Past that, the date window is narrowed to the last feedback seen
        (± 1 s, since WB does not say whether the bounds are inclusive) and paging restarts at skip 0;
        ids already yielded are skipped. `dateAsc` (the default) is stable while new feedbacks arrive.
        Do not answer unanswered feedbacks while iterating them: answered ones leave the list and shift
        the offsets. Collect first, then answer.
        """
        seen: set[str] = set()
        lo, hi, skip = _unix(date_from), _unix(date_to), 0
        while True:
            page = await self.list_feedbacks(
                is_answered=is_answered,
                take=page_size,
                skip=skip,
                nm_id=nm_id,
                order=order,
                date_from=lo,
                date_to=hi,
            )
            for feedback in page.feedbacks:
                if feedback.id not in seen:
                    seen.add(feedback.id)
                    yield feedback
            if len(page.feedbacks) < page_size:
                return
            skip += page_size
            if skip > self.feedbacks_max_skip:
                lo, hi = _narrow(page.feedbacks[-1], order, lo, hi)
                skip = 0

    async def get_feedback(self, feedback_id: str) -> Feedback:
        """`GET /api/v1/feedback?id=`; an unknown id is `WBNotFound` (WB answers 422)."""
        what = "get feedback"
        try:
            data = await self._get_feedbacks_api("/api/v1/feedback", what, {"id": feedback_id})
        except WBBadRequest as exc:
            if exc.status == 422 and not isinstance(exc, WBNotFound):
                raise WBNotFound(
                    str(exc), error_text=exc.error_text, status=422, request_id=exc.request_id
                ) from exc
            raise
        if data is None:
            raise WBNotFound(f"{what}: WB returned no feedback for id {feedback_id!r}")
        return self._model(Feedback, data, what)

    async def answer_feedback(self, feedback_id: str, text: str) -> None:
        """`POST /api/v1/feedbacks/answer {"id","text"}` → 204.

        WB does NOT validate the id: a wrong id also gets 204. Use `answer_feedback_confirmed` to know.
        """
        text = text.strip()
        if not feedback_id:
            raise WBBadRequest("answer feedback: empty feedback id")
        if not ANSWER_MIN_LEN <= len(text) <= ANSWER_MAX_LEN:
            raise WBBadRequest(
                f"answer feedback: text must be {ANSWER_MIN_LEN}–{ANSWER_MAX_LEN} characters, "
                f"got {len(text)}",
                error_text="answer length",
            )
        what = "answer feedback"
        url = f"{self.hosts.feedbacks}/api/v1/feedbacks/answer"
        body = {"id": feedback_id, "text": text}
        resp = await self._send(FEEDBACKS, "POST", url, what=what, json_body=body, idempotent=False)
        self._check(resp, what)

    async def answer_feedback_confirmed(
        self, feedback_id: str, text: str, *, attempts: int = 3, delay: float = 1.0
    ) -> Feedback:
        """Answer, then re-read the feedback until the answer shows (it may be in moderation).

        Returns the re-read feedback. Raises `WBAnswerNotConfirmed` when the feedback does not exist or
        shows another/no answer, or the original `WBUnavailable` when an ambiguous send did not land.
        """
        ambiguous: WBUnavailable | None = None
        try:
            await self.answer_feedback(feedback_id, text)
        except WBUnavailable as exc:
            if not exc.maybe_applied:
                raise
            ambiguous = exc
        wanted, current = text.strip(), ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(delay)
            try:
                feedback = await self.get_feedback(feedback_id)
            except WBNotFound as exc:
                raise WBAnswerNotConfirmed(
                    f"answer feedback: feedback {feedback_id!r} does not exist (WB accepts any id)"
                ) from exc
            current = feedback.answer_text.strip()
            if current == wanted:
                return feedback
        if ambiguous is not None and not current:
            raise ambiguous
        raise WBAnswerNotConfirmed(
            f"answer feedback: feedback {feedback_id!r} shows "
            + (f"another answer ({current[:60]!r})" if current else "no answer")
        )

    # --- content: product cards -----------------------------------------------------------------------

    async def list_cards(
        self,
        *,
        limit: int = CARDS_MAX_LIMIT,
        cursor: CardsCursor | None = None,
        text_search: str | None = None,
        ascending: bool = True,
        with_photo: int = -1,
    ) -> CardsPage:
        """One page of `POST /content/v2/get/cards/list` ([PROD]); `text_search` matches a seller
        article, a WB article (nmID) or a barcode."""
        if not 1 <= limit <= CARDS_MAX_LIMIT:
            raise ValueError(f"limit must be 1..{CARDS_MAX_LIMIT}, got {limit}")
        filters: dict[str, Any] = {"withPhoto": with_photo}
        if text_search:
            filters["textSearch"] = text_search
        body = {
            "settings": {
                "sort": {"ascending": ascending},
                "filter": filters,
                "cursor": (cursor or CardsCursor()).as_request(limit),
            }
        }
        what = "cards list"
        url = f"{self.hosts.content}/content/v2/get/cards/list"
        # A read-only query despite being a POST: safe to retry.
        resp = await self._send(CONTENT, "POST", url, what=what, params={"locale": "ru"}, json_body=body)
        self._check(resp, what)
        return self._model(CardsPage, self._json(resp, what), what)

    async def iter_card_pages(
        self,
        *,
        since: CardsCursor | None = None,
        text_search: str | None = None,
        limit: int = CARDS_MAX_LIMIT,
    ) -> AsyncIterator[CardsPage]:
        """Cursor paging, oldest change first: copy `cursor.updatedAt`+`nmID` into the next request, stop
        when `cursor.total < limit`. Save the last non-empty page's cursor and pass it as `since` next
        time to fetch only cards changed after it."""
        cursor = since
        while True:
            page = await self.list_cards(limit=limit, cursor=cursor, text_search=text_search)
            yield page
            if page.cursor.total < limit or not page.cards:
                return
            nxt = page.cursor
            if nxt.updated_at is None or nxt.nm_id is None:
                raise WBProtocolError("cards list: a full page came without a cursor to continue from")
            if cursor is not None and (nxt.updated_at, nxt.nm_id) == (cursor.updated_at, cursor.nm_id):
                raise WBProtocolError("cards list: the cursor did not advance; stopping to avoid a loop")
            cursor = nxt

    async def iter_cards(
        self, *, since: CardsCursor | None = None, text_search: str | None = None
    ) -> AsyncIterator[Card]:
        async for page in self.iter_card_pages(since=since, text_search=text_search):
            for card in page.cards:
                yield card

    async def card_barcodes(self) -> list[CardBarcodes]:
        """All the seller's cards with nmID, vendorCode, title, brand and per-size barcodes (`skus`).

        A card changed during the sync shows up again later in the cursor order; the newest copy wins.
        """
        by_nm: dict[int, CardBarcodes] = {}
        async for card in self.iter_cards():
            by_nm[card.nm_id] = CardBarcodes.from_card(card)
        return list(by_nm.values())

    async def find_barcode(self, barcode: str) -> BarcodeMatch | None:
        """Is this barcode one of the seller's? One `textSearch` call, then an exact match on `skus`
        (the search also matches articles, so a hit alone proves nothing). `None`: not the seller's.

        For many checks, sync `card_barcodes()` into a local table instead (100 req/min limit)."""
        barcode = barcode.strip()
        if not barcode:
            return None
        page = await self.list_cards(text_search=barcode)
        for card in page.cards:
            for size in card.sizes:
                if barcode in size.skus:
                    return BarcodeMatch(
                        barcode=barcode,
                        nm_id=card.nm_id,
                        chrt_id=size.chrt_id,
                        tech_size=size.tech_size,
                        wb_size=size.wb_size,
                        vendor_code=card.vendor_code,
                        title=card.title,
                        brand=card.brand,
                    )
        return None


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _drop_none(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _narrow(
    last: Feedback, order: FeedbackOrder, lo: int | None, hi: int | None
) -> tuple[int | None, int | None]:
    """The next date window once `skip` hit WB's cap: start again from the last feedback's second."""
    edge = int(last.created_date.timestamp())
    if order == "dateAsc":
        new_lo = edge - 1
        if lo is not None and new_lo <= lo:
            raise WBError("feedbacks list: too many feedbacks within one second to page past WB's skip cap")
        return new_lo, hi
    new_hi = edge + 1
    if hi is not None and new_hi >= hi:
        raise WBProtocolError(
            "feedbacks list: too many feedbacks within one second to page past WB's skip cap"
        )
    return lo, new_hi
