"""Read a WB API token (a JWT) without verifying it, and explain what it cannot do.

WB documents that the token's payload may be decoded to learn its type and scopes ([GEN], [KB-AUTH]):

- `exp`: expiry, unix seconds (tokens live 180 days);
- `acc`: token type — 1 base, 2 test, 3 personal, 4 service;
- `for`: `self` for a personal token, `asid:<id>` for a service token;
- `s`: access categories as a bitmask, bit N meaning `1 << N`: 1 content, 2 analytics, 3 prices and
  discounts, 4 marketplace, 5 statistics, 6 promotion, 7 feedbacks and questions, 8 recommendations,
  9 buyer chat, 10 supplies, 11 buyer returns, 12 documents; bit 30 = read-only;
- `t`: true for a test (sandbox) token; `oid`: numeric seller id; `sid`: seller UUID.

The signature is not checked: only WB can do that (`WBClient.ping()`). This module is for telling the
seller, before any call, that a token is expired, read-only or missing a category.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

Lang = Literal["ru", "en"]


class TokenType(StrEnum):
    BASE = "base"
    TEST = "test"
    PERSONAL = "personal"
    SERVICE = "service"
    UNKNOWN = "unknown"


ACC_TYPES: Mapping[int, TokenType] = {
    1: TokenType.BASE,
    2: TokenType.TEST,
    3: TokenType.PERSONAL,
    4: TokenType.SERVICE,
}

CATEGORY_BITS: Mapping[str, int] = {
    "content": 1,
    "analytics": 2,
    "prices": 3,
    "marketplace": 4,
    "statistics": 5,
    "promotion": 6,
    "feedbacks": 7,  # feedbacks AND questions: one category
    "recommendations": 8,
    "buyer_chat": 9,
    "supplies": 10,
    "returns": 11,
    "documents": 12,
}
READ_ONLY_BIT = 30

# Names as the seller sees them in the portal (Настройки → Доступ к API).
CATEGORY_LABELS: Mapping[str, Mapping[Lang, str]] = {
    "content": {"ru": "Контент", "en": "Content"},
    "analytics": {"ru": "Аналитика", "en": "Analytics"},
    "prices": {"ru": "Цены и скидки", "en": "Prices and discounts"},
    "marketplace": {"ru": "Маркетплейс", "en": "Marketplace"},
    "statistics": {"ru": "Статистика", "en": "Statistics"},
    "promotion": {"ru": "Продвижение", "en": "Promotion"},
    "feedbacks": {"ru": "Вопросы и отзывы", "en": "Feedbacks and questions"},
    "recommendations": {"ru": "Рекомендации", "en": "Recommendations"},
    "buyer_chat": {"ru": "Чат с покупателями", "en": "Buyers chat"},
    "supplies": {"ru": "Поставки", "en": "Supplies"},
    "returns": {"ru": "Возвраты покупателями", "en": "Buyers returns"},
    "documents": {"ru": "Документы", "en": "Documents"},
}

# Why otklik needs a category: said to the seller next to "missing category X".
CATEGORY_PURPOSE: Mapping[str, Mapping[Lang, str]] = {
    "feedbacks": {
        "ru": "без неё бот не сможет читать отзывы и вопросы и отвечать на них",
        "en": "without it the bot cannot read feedbacks and questions or answer them",
    },
    "content": {
        "ru": "без неё бот не сможет проверить, что штрихкод с этикетки относится к вашему товару",
        "en": "without it the bot cannot check that a barcode from a label belongs to your product",
    },
    "buyer_chat": {
        "ru": "без неё бот не сможет читать чат с покупателями и отвечать в нём",
        "en": "without it the bot cannot read or answer the buyers chat",
    },
    "returns": {
        "ru": "без неё бот не увидит заявки покупателей на возврат",
        "en": "without it the bot cannot see the buyers' return claims",
    },
    "statistics": {
        "ru": "без неё бот не сможет проверить заказ по номеру",
        "en": "without it the bot cannot check an order by its number",
    },
    "marketplace": {
        "ru": "без неё бот не увидит заказы FBS/DBS",
        "en": "without it the bot cannot see FBS/DBS orders",
    },
}

DEFAULT_NEEDED: frozenset[str] = frozenset({"feedbacks", "content"})
EXPIRY_WARNING = timedelta(days=14)

_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a WB token's payload says about itself."""

    token_type: TokenType
    categories: frozenset[str]
    read_only: bool
    sandbox: bool
    expires_at: datetime | None
    seller_id: int | None = None  # `oid`
    seller_uuid: str | None = None  # `sid`
    issued_for: str | None = None  # `for`: "self" or "asid:<service id>"
    claims: Mapping[str, Any] = field(default_factory=dict)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def has(self, category: str) -> bool:
        return category in self.categories


def _b64url_json(segment: str, what: str) -> Any:
    if not segment or not _B64URL.match(segment) or len(segment.rstrip("=")) % 4 == 1:
        raise ValueError(f"WB token: the {what} is not base64url text; copy the whole token again")
    try:
        raw = base64.urlsafe_b64decode(segment.rstrip("=") + "=" * (-len(segment.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"WB token: the {what} is not valid base64url ({exc})") from exc
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"WB token: the {what} is not JSON; this does not look like a WB API token") from exc


def _int_claim(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"WB token: claim {name!r} should be a number, got {type(value).__name__}")
    return int(value)


def inspect_token(token: str) -> TokenInfo:
    """Decode a WB token's payload (no signature check). Raises `ValueError` with a clear message."""
    if not isinstance(token, str):
        raise ValueError("WB token must be a string")
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(
            f"WB token must have three parts separated by dots (header.payload.signature), got {len(parts)}; "
            "copy the whole token from the seller portal"
        )
    header = _b64url_json(parts[0], "header")
    claims = _b64url_json(parts[1], "payload")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("WB token: the header and payload must be JSON objects")
    exp = _int_claim(claims, "exp")
    mask = _int_claim(claims, "s") or 0
    acc = _int_claim(claims, "acc")
    token_type = ACC_TYPES.get(acc, TokenType.UNKNOWN) if acc is not None else TokenType.UNKNOWN
    sandbox = bool(claims.get("t")) or token_type is TokenType.TEST
    oid = _int_claim(claims, "oid")
    sid, issued_for = claims.get("sid"), claims.get("for")
    return TokenInfo(
        token_type=token_type,
        categories=frozenset(name for name, bit in CATEGORY_BITS.items() if mask & (1 << bit)),
        read_only=bool(mask & (1 << READ_ONLY_BIT)),
        sandbox=sandbox,
        expires_at=datetime.fromtimestamp(exp, UTC) if exp is not None else None,
        seller_id=oid,
        seller_uuid=str(sid) if sid is not None else None,
        issued_for=str(issued_for) if issued_for is not None else None,
        claims=claims,
    )


@dataclass(frozen=True, slots=True)
class TokenProblem:
    """One thing wrong with a token, for the admin: a stable `code` and the sentence in two languages."""

    code: str  # expired | expiring_soon | missing_category:<name> | read_only | sandbox | base_token
    ru: str
    en: str
    blocking: bool = True  # false for warnings (expiring soon)

    def text(self, lang: Lang = "ru") -> str:
        return self.ru if lang == "ru" else self.en


def _missing(category: str) -> TokenProblem:
    label = CATEGORY_LABELS.get(category, {"ru": category, "en": category})
    purpose = CATEGORY_PURPOSE.get(category)
    ru = f"В токене нет категории «{label['ru']}»"
    en = f"The token lacks the “{label['en']}” category"
    if purpose:
        ru, en = f"{ru}: {purpose['ru']}", f"{en}: {purpose['en']}"
    return TokenProblem(f"missing_category:{category}", ru + ".", en + ".")


_TEXTS: Mapping[str, tuple[str, str]] = {
    "expired": (
        "Срок действия токена истёк {day}. Создайте новый: личный кабинет → Настройки → Доступ к API.",
        "The token expired on {day}. Create a new one: seller portal → Settings → API access.",
    ),
    "expiring_soon": (
        "Токен истекает {day} (через {days} дн.). Заранее создайте новый и замените его в otklik.",
        "The token expires on {day} (in {days} days). Create a new one and replace it in otklik.",
    ),
    "sandbox": (
        "Это тестовый токен: он работает только в песочнице WB, а не с вашим магазином.",
        "This is a test token: it works only in WB's sandbox, not with your shop.",
    ),
    "base_token": (
        "Это базовый токен: WB даёт ему 5 запросов в час к отзывам и 1 в час к чату, "
        "бот так работать не сможет. Создайте персональный токен.",
        "This is a base token: WB allows it 5 feedback requests and 1 chat request per hour, "
        "too few for the bot. Create a personal token.",
    ),
    "read_only": (
        "Токен только на чтение: бот не сможет отвечать на отзывы и в чате. "
        "Создайте токен без опции «Только на чтение».",
        "The token is read-only: the bot cannot answer feedbacks or chats. "
        "Create a token without the “Read only” option.",
    ),
}


def _problem(code: str, *, blocking: bool = True, **values: object) -> TokenProblem:
    ru, en = _TEXTS[code]
    return TokenProblem(code, ru.format(**values), en.format(**values), blocking)


def token_problems(
    info: TokenInfo,
    needed: Collection[str] = DEFAULT_NEEDED,
    *,
    need_write: bool = True,
    now: datetime | None = None,
) -> list[TokenProblem]:
    """Everything that stops (or soon stops) otklik from working with this token."""
    now = now or datetime.now(UTC)
    problems: list[TokenProblem] = []
    if info.expires_at is not None:
        day = info.expires_at.strftime("%d.%m.%Y")
        if info.is_expired(now):
            problems.append(_problem("expired", day=day))
        elif info.expires_at - now <= EXPIRY_WARNING:
            days = (info.expires_at - now).days
            problems.append(_problem("expiring_soon", blocking=False, day=day, days=days))
    if info.sandbox:
        problems.append(_problem("sandbox"))
    if info.token_type is TokenType.BASE:
        problems.append(_problem("base_token"))
    problems.extend(_missing(c) for c in sorted(set(needed) - info.categories))
    if need_write and info.read_only:
        problems.append(_problem("read_only"))
    return problems


def explain_missing(
    info: TokenInfo,
    needed: Collection[str] = DEFAULT_NEEDED,
    *,
    lang: Lang = "ru",
    need_write: bool = True,
    now: datetime | None = None,
) -> list[str]:
    """Human sentences (Russian by default, `lang="en"` for English) about what the token lacks.

    An empty list means the token is fine for `needed`. For both languages at once, and a stable code per
    problem, use `token_problems`.
    """
    return [p.text(lang) for p in token_problems(info, needed, need_write=need_write, now=now)]
