"""Async client of the Wildberries seller API: ping, feedbacks, product cards (barcodes).

Shapes, limits and quirks follow /work/shared/reference/wildberries-api.md ([COMM], [PROD], [GEN]).
Rate limiting, retries and error mapping live in `transport.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from otklik.adapters.wildberries.errors import (
    WBAnswerNotConfirmed,
    WBBadRequest,
    WBError,
    WBFilePending,
    WBFileRejected,
    WBInvalidSignature,
    WBNotFound,
    WBProtocolError,
    WBUnavailable,
)
from otklik.adapters.wildberries.hosts import WBHosts
from otklik.adapters.wildberries.ratelimit import (
    BUYER_CHAT,
    CHAT_DOWNLOAD,
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
    ChatEventsPage,
    ChatInfo,
    ChatsList,
    Feedback,
    FeedbackOrder,
    FeedbacksPage,
    NewFeedbacksQuestions,
    Ping,
    SentMessage,
    UnansweredCount,
)
from otklik.adapters.wildberries.transport import AuthScheme, WBTransport, parse_model

FEEDBACKS_MAX_TAKE = 5000  # [COMM] GET /api/v1/feedbacks: take max 5 000
FEEDBACKS_MAX_SKIP = 199_990  # [COMM] skip max 199 990
CARDS_MAX_LIMIT = 100  # [PROD] cursor.limit ≤ 100
ANSWER_MIN_LEN, ANSWER_MAX_LEN = 2, 5000  # [COMM] answer text 2–5000 characters
CHAT_MESSAGE_MAX = 1000  # [COMM] POST /api/v1/seller/message: `message` ≤ 1000 characters
CHAT_FILE_MAX = 5 * 1024 * 1024  # each file ≤ 5 MB
CHAT_FILES_TOTAL_MAX = 30 * 1024 * 1024  # all files ≤ 30 MB
CHAT_FILE_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})
REPLY_SIGN_MAX = 255

DateLike = datetime | int


def _unix(value: DateLike | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp())


class WBClient:
    """One seller's connection to the WB API. Use as `async with WBClient(token) as wb: ...`.

    - `hosts`: per-API base URLs; `WBHosts.single(url)` sends everything to one server (fakes, demos).
    - `auth_scheme`: WB's OpenAPI files declare the security scheme as an apiKey in `Authorization`, i.e.
      the bare token (only the WBD file uses `Bearer`), and most integrations send it so: `"raw"` (the
      default) sends the bare token; `"bearer"` sends `Bearer <token>` as WB's knowledge base shows.
    - `retry`: attempts and back-off (`RetryPolicy`); every failure ends in one `WBError` subclass.
    - `limiters`: share one `RateLimiters` between clients of the same seller account (WB limits per
      account); `limits` overrides single groups (e.g. `BASE_TOKEN_LIMITS` for a base token).
    - `transport`: an httpx transport, e.g. for tests.
    - `feedbacks_max_skip`: WB's cap on `skip` (tests lower it to exercise paging past the cap).
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
        auth_scheme: AuthScheme = "raw",
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "otklik",
        feedbacks_max_skip: int = FEEDBACKS_MAX_SKIP,
    ) -> None:
        self.hosts = hosts or WBHosts()
        self.feedbacks_max_skip = feedbacks_max_skip
        self._wb = WBTransport(
            token,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            limiters=limiters or RateLimiters(limits),
            auth_scheme=auth_scheme,
            transport=transport,
            user_agent=user_agent,
        )

    def __repr__(self) -> str:  # never show the token
        return f"WBClient(feedbacks={self.hosts.feedbacks!r}, content={self.hosts.content!r})"

    @property
    def limiters(self) -> RateLimiters:
        return self._wb.limiters

    async def aclose(self) -> None:
        await self._wb.aclose()

    async def __aenter__(self) -> WBClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _feedbacks_get(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._wb.get_envelope(FEEDBACKS, f"{self.hosts.feedbacks}{path}", what=what, params=params)

    # --- common ---------------------------------------------------------------------------------------

    async def ping(self, api: str = "common") -> Ping:
        """`GET /ping` on one API's host: checks the token, the host and the category ([GEN]).

        WB allows 3 pings per 30 s per host and blocks scripts that ping more: call it when a seller
        saves a token, not in a loop.
        """
        base = self.hosts.for_api(api)
        data = await self._wb.get_json(f"{PING}:{base}", f"{base}/ping", what="ping")
        return parse_model(Ping, data, "ping")

    # --- feedbacks ------------------------------------------------------------------------------------

    async def has_new_feedbacks_or_questions(self) -> NewFeedbacksQuestions:
        """The cheap "anything new?" poll: `GET /api/v1/new-feedbacks-questions`."""
        data = await self._feedbacks_get("/api/v1/new-feedbacks-questions", "new feedbacks check")
        return parse_model(NewFeedbacksQuestions, data, "new feedbacks check")

    async def count_unanswered_feedbacks(self) -> UnansweredCount:
        data = await self._feedbacks_get("/api/v1/feedbacks/count-unanswered", "unanswered count")
        return parse_model(UnansweredCount, data, "unanswered count")

    async def count_feedbacks(
        self,
        *,
        is_answered: bool | None = None,
        date_from: DateLike | None = None,
        date_to: DateLike | None = None,
    ) -> int:
        """`GET /api/v1/feedbacks/count`. `is_answered=None` omits the parameter, and then WB counts the
        **answered** ones (its spec's default is `true`); pass `False` for the unanswered."""
        params = _drop_none(isAnswered=_bool(is_answered), dateFrom=_unix(date_from), dateTo=_unix(date_to))
        data = await self._feedbacks_get("/api/v1/feedbacks/count", "feedbacks count", params)
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
        data = await self._feedbacks_get("/api/v1/feedbacks", "feedbacks list", params)
        return parse_model(FeedbacksPage, data, "feedbacks list")

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
            data = await self._feedbacks_get("/api/v1/feedback", what, {"id": feedback_id})
        except WBBadRequest as exc:
            if exc.status == 422 and not isinstance(exc, WBNotFound):
                raise WBNotFound(str(exc), error_text=exc.error_text, status=422, request_id=exc.request_id) from exc
            raise
        if data is None:
            raise WBNotFound(f"{what}: WB returned no feedback for id {feedback_id!r}")
        return parse_model(Feedback, data, what)

    async def answer_feedback(self, feedback_id: str, text: str) -> None:
        """`POST /api/v1/feedbacks/answer {"id","text"}` → 204.

        WB does NOT validate the id: a wrong id also gets 204. Use `answer_feedback_confirmed` to know.
        """
        text = text.strip()
        if not feedback_id:
            raise WBBadRequest("answer feedback: empty feedback id")
        if not ANSWER_MIN_LEN <= len(text) <= ANSWER_MAX_LEN:
            raise WBBadRequest(
                f"answer feedback: text must be {ANSWER_MIN_LEN}–{ANSWER_MAX_LEN} characters, got {len(text)}",
                error_text="answer length",
            )
        what = "answer feedback"
        url = f"{self.hosts.feedbacks}/api/v1/feedbacks/answer"
        body = {"id": feedback_id, "text": text}
        await self._wb.request(FEEDBACKS, "POST", url, what=what, json_body=body, idempotent=False)

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

    # --- buyer chat ([COMM] buyersChat) ---------------------------------------------------------------

    async def list_chats(self) -> list[ChatInfo]:
        """`GET /api/v1/seller/chats`: every chat (no paging), with its `replySign` and product card."""
        what = "chats list"
        url = f"{self.hosts.buyer_chat}/api/v1/seller/chats"
        data = await self._wb.get_json(BUYER_CHAT, url, what=what)
        return parse_model(ChatsList, data, what).result

    async def chat_events(self, next_cursor: int | None = None) -> ChatEventsPage:
        """One call of `GET /api/v1/seller/events`: without `next_cursor` the oldest events WB keeps, then
        from `result.next`. The events come as raw dicts, to be read one by one (`ChatEvent`): one
        malformed event must not hide the others."""
        if next_cursor is not None and next_cursor <= 0:
            raise ValueError("next must be a positive unix time in ms (WB refuses 0)")
        what = "chat events"
        url = f"{self.hosts.buyer_chat}/api/v1/seller/events"
        params = {"next": next_cursor} if next_cursor is not None else None
        body = await self._wb.get_json(BUYER_CHAT, url, what=what, params=params)
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise WBProtocolError(f"{what}: WB response has no `result` object: {str(body)[:80]!r}")
        return parse_model(ChatEventsPage, body["result"], what)

    async def send_chat_message(
        self, reply_sign: str, text: str = "", files: list[tuple[str, bytes, str]] | None = None
    ) -> SentMessage:
        """`POST /api/v1/seller/message` (multipart): `text` ≤ 1000 characters, `files` as
        (name, bytes, content type), JPEG/PNG/PDF, each ≤ 5 MB, ≤ 30 MB in all. Not retried after it may
        have reached WB (WB does not de-duplicate). A stale sign is `WBInvalidSignature`."""
        files = files or []
        if not reply_sign or len(reply_sign) > REPLY_SIGN_MAX:
            raise WBBadRequest(f"chat message: replySign must be 1..{REPLY_SIGN_MAX} characters")
        if len(text) > CHAT_MESSAGE_MAX:
            raise WBBadRequest(f"chat message: text is {len(text)} characters, WB takes {CHAT_MESSAGE_MAX}")
        if not text.strip() and not files:
            raise WBBadRequest("chat message: nothing to send")
        for name, content, ctype in files:
            if ctype not in CHAT_FILE_TYPES:
                raise WBBadRequest(f"chat message: {name!r} is {ctype}; WB takes JPEG, PNG and PDF")
            if len(content) > CHAT_FILE_MAX:
                raise WBBadRequest(f"chat message: {name!r} is larger than 5 MB")
        if sum(len(c) for _, c, _ in files) > CHAT_FILES_TOTAL_MAX:
            raise WBBadRequest("chat message: the files are larger than 30 MB in all")
        what = "chat message"
        url = f"{self.hosts.buyer_chat}/api/v1/seller/message"
        # always multipart/form-data, with or without files (plain fields as parts without a file name)
        parts: list[tuple[str, tuple[str | None, bytes, str | None]]] = [
            ("replySign", (None, reply_sign.encode(), None)),
            ("message", (None, text.encode(), None)),
        ]
        parts += [("file", (name, content, ctype)) for name, content, ctype in files]
        try:
            resp = await self._wb.request(BUYER_CHAT, "POST", url, what=what, files=parts, idempotent=False)
        except WBBadRequest as exc:
            if exc.status == 400 and "signature" in exc.error_text.lower():
                raise WBInvalidSignature(
                    str(exc), error_text=exc.error_text, status=400, request_id=exc.request_id
                ) from exc
            raise
        body = self._wb.parse_json(resp, what)
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise WBProtocolError(f"{what}: WB response has no `result` object: {str(body)[:80]!r}")
        return parse_model(SentMessage, body["result"], what)

    async def download_chat_file(self, download_id: str, *, max_bytes: int = CHAT_FILE_MAX * 2) -> tuple[bytes, str]:
        """`GET /api/v1/seller/download/{downloadID}`: (content, content type). 202 (in moderation) is
        `WBFilePending` with WB's `retrySeconds`; 451 (failed moderation) is `WBFileRejected`."""
        if not download_id or "/" in download_id or len(download_id) > 200:
            raise WBBadRequest(f"chat file: invalid download id {download_id[:40]!r}")
        what = "chat file"
        url = f"{self.hosts.buyer_chat}/api/v1/seller/download/{download_id}"
        try:
            resp = await self._wb.request(CHAT_DOWNLOAD, "GET", url, what=what)
        except WBBadRequest as exc:
            if exc.status == 451:
                raise WBFileRejected(f"{what}: the file failed WB's moderation", status=451) from exc
            raise
        if resp.status_code == 202:
            retry = 30.0
            try:
                body = resp.json()
                retry = float(body.get("retrySeconds", retry)) if isinstance(body, dict) else retry
            except (ValueError, TypeError):
                pass
            raise WBFilePending(f"{what}: in moderation, retry after {retry:.0f} s", retry_after=max(retry, 1.0))
        if len(resp.content) > max_bytes:
            raise WBBadRequest(f"{what}: the file is larger than {max_bytes} bytes")
        ctype = resp.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        return resp.content, ctype

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
        resp = await self._wb.request(CONTENT, "POST", url, what=what, params={"locale": "ru"}, json_body=body)
        return parse_model(CardsPage, self._wb.parse_json(resp, what), what)

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


def _narrow(last: Feedback, order: FeedbackOrder, lo: int | None, hi: int | None) -> tuple[int | None, int | None]:
    """The next date window once `skip` hit WB's cap: start again from the last feedback's second."""
    edge = int(last.created_date.timestamp())
    if order == "dateAsc":
        new_lo = edge - 1
        if lo is not None and new_lo <= lo:
            raise WBError("feedbacks list: too many feedbacks within one second to page past WB's skip cap")
        return new_lo, hi
    new_hi = edge + 1
    if hi is not None and new_hi >= hi:
        raise WBError("feedbacks list: too many feedbacks within one second to page past WB's skip cap")
    return lo, new_hi
