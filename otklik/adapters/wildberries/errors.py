"""One exception tree for every Wildberries API failure.

`str(error)` is the technical description for logs (status, WB's own text, request id). `user_message()`
is a short, user-safe sentence for the seller's admin or an operator, in Russian (default) or English;
it never contains the token or a buyer's data.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Lang = Literal["ru", "en"]


class WBError(Exception):
    """Base of all Wildberries API errors."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Ошибка при обращении к API Wildberries.",
        "en": "The Wildberries API call failed.",
    }

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id

    def user_message(self, lang: Lang = "ru") -> str:
        return self._user[lang]


class WBAuthError(WBError):
    """401/402: the token is missing, malformed, expired or revoked (`reason` is WB's explanation)."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Wildberries не принял API-токен: проверьте, что он скопирован целиком и не истёк.",
        "en": "Wildberries rejected the API token: check it was copied in full and has not expired.",
    }

    def __init__(
        self, message: str, *, reason: str = "", status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.reason = reason


class WBForbidden(WBAuthError):
    """403: the token is valid but lacks the category (or write access) this method needs."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "У API-токена нет нужной категории доступа (или он только на чтение). Создайте токен с нужными "
        "категориями.",
        "en": "The API token lacks the required access category (or is read-only). Create a token with the "
        "needed categories.",
    }


class WBRateLimited(WBError):
    """429 after the retries were used up, or WB asked to wait longer than we wait inline."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Wildberries временно ограничил число запросов. Повторим позже автоматически.",
        "en": "Wildberries is rate-limiting requests for now. We will retry later automatically.",
    }

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after = retry_after


class WBUnavailable(WBError):
    """5xx, timeouts or network failures after the retries were used up.

    `maybe_applied` is true when a non-idempotent request (an answer) may have reached WB before the
    failure: re-read the object before sending it again.
    """

    _user: ClassVar[dict[str, str]] = {
        "ru": "API Wildberries сейчас недоступно. Попробуем ещё раз позже.",
        "en": "The Wildberries API is unavailable right now. We will try again later.",
    }

    def __init__(
        self,
        message: str,
        *,
        maybe_applied: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.maybe_applied = maybe_applied


class WBBadRequest(WBError):
    """400/404/409/422: WB refused the request itself (`error_text` is WB's explanation)."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Wildberries отклонил запрос.",
        "en": "Wildberries refused the request.",
    }

    def __init__(
        self,
        message: str,
        *,
        error_text: str = "",
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id)
        self.error_text = error_text


class WBNotFound(WBBadRequest):
    """The object (a feedback, a card) does not exist or is not this seller's."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Wildberries не нашёл этот объект (отзыв или карточку).",
        "en": "Wildberries could not find this object (feedback or card).",
    }


class WBProtocolError(WBError):
    """WB answered with something we cannot read: not JSON, or JSON without the documented fields."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Wildberries вернул неожиданный ответ. Мы записали подробности; попробуйте позже.",
        "en": "Wildberries returned an unexpected response. Details were logged; try again later.",
    }


class WBAnswerNotConfirmed(WBError):
    """An answer was sent but re-reading the feedback did not show it (wrong id, or not applied)."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Ответ на отзыв не подтвердился: Wildberries не показывает его у отзыва.",
        "en": "The feedback answer was not confirmed: Wildberries does not show it on the feedback.",
    }


class WBInvalidSignature(WBBadRequest):
    """400 "Invalid signature" on a chat message: the chat's `replySign` is stale; refresh it from the
    chats list and send once more."""


class WBFilePending(WBError):
    """202 on a chat file download: the file is still in moderation; try again after `retry_after` s."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Файл из чата ещё на модерации Wildberries.",
        "en": "The chat file is still in Wildberries' moderation.",
    }

    def __init__(self, message: str, *, retry_after: float, status: int | None = 202) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class WBFileRejected(WBError):
    """451 on a chat file download: the file failed Wildberries' moderation and will never be available."""

    _user: ClassVar[dict[str, str]] = {
        "ru": "Файл из чата не прошёл модерацию Wildberries.",
        "en": "The chat file failed Wildberries' moderation.",
    }
