"""Token inspection: decoding WB JWT payloads and explaining what a token cannot do (no I/O)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otklik.adapters.wildberries.token import (
    CATEGORY_BITS,
    TokenType,
    explain_missing,
    inspect_token,
    token_problems,
)
from otklik.testing.fake_wb import make_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(payload: object, header: object | None = None) -> str:
    head = header if header is not None else {"alg": "ES256", "typ": "JWT"}
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(payload).encode())}.c2lnbmF0dXJl"


def test_documented_payload_decodes_to_type_categories_and_flags() -> None:
    # s = content(1) + statistics(5) + feedbacks(7) + buyer chat(9) + returns(11)
    mask = (1 << 1) | (1 << 5) | (1 << 7) | (1 << 9) | (1 << 11)
    token = jwt({"acc": 3, "for": "self", "s": mask, "exp": 1_780_000_000, "oid": 42, "sid": "uuid-1", "t": False})
    info = inspect_token(token)
    assert info.token_type is TokenType.PERSONAL
    assert info.categories == {"content", "statistics", "feedbacks", "buyer_chat", "returns"}
    assert not info.read_only and not info.sandbox
    assert info.expires_at == datetime.fromtimestamp(1_780_000_000, UTC)
    assert (info.seller_id, info.seller_uuid, info.issued_for) == (42, "uuid-1", "self")


@pytest.mark.parametrize(
    ("acc", "expected"),
    [(1, TokenType.BASE), (2, TokenType.TEST), (3, TokenType.PERSONAL), (4, TokenType.SERVICE), (9, TokenType.UNKNOWN)],
)
def test_acc_claim_gives_the_token_type(acc: int, expected: TokenType) -> None:
    assert inspect_token(jwt({"acc": acc, "s": 0, "exp": 1_780_000_000})).token_type is expected


def test_read_only_bit_30_and_test_flag() -> None:
    info = inspect_token(jwt({"acc": 2, "s": (1 << 30) | (1 << 7), "t": True, "exp": 1}))
    assert info.read_only and info.sandbox and info.categories == {"feedbacks"}


def test_missing_optional_claims_are_tolerated() -> None:
    info = inspect_token(jwt({}))
    assert info.token_type is TokenType.UNKNOWN
    assert info.categories == frozenset() and info.expires_at is None and not info.is_expired(NOW)


def test_bearer_prefix_and_whitespace_are_accepted() -> None:
    token = make_token()
    assert inspect_token(f"  Bearer {token}\n").categories == inspect_token(token).categories


def test_a_good_token_has_no_problems() -> None:
    info = inspect_token(make_token(categories=["feedbacks", "content"], expires_at=NOW + timedelta(days=100)))
    assert explain_missing(info, now=NOW) == []
    assert explain_missing(info, lang="en", now=NOW) == []


def test_expired_token_is_explained_in_both_languages() -> None:
    info = inspect_token(make_token(expires_at=NOW - timedelta(days=1)))
    assert info.is_expired(NOW)
    ru = explain_missing(info, now=NOW)
    en = explain_missing(info, lang="en", now=NOW)
    assert any("истёк 28.02.2026" in s for s in ru), ru
    assert any("expired on 28.02.2026" in s for s in en), en


def test_expiring_soon_is_a_non_blocking_warning() -> None:
    info = inspect_token(make_token(expires_at=NOW + timedelta(days=3, hours=1)))
    problems = token_problems(info, now=NOW)
    assert [(p.code, p.blocking) for p in problems] == [("expiring_soon", False)]
    assert "через 3 дн." in problems[0].ru


def test_missing_categories_name_the_portal_category_and_the_reason() -> None:
    info = inspect_token(make_token(categories=["statistics"], expires_at=NOW + timedelta(days=90)))
    problems = token_problems(info, {"feedbacks", "content"}, now=NOW)
    assert {p.code for p in problems} == {"missing_category:feedbacks", "missing_category:content"}
    ru = " ".join(explain_missing(info, {"feedbacks", "content"}, now=NOW))
    en = " ".join(explain_missing(info, {"feedbacks", "content"}, lang="en", now=NOW))
    assert "«Вопросы и отзывы»" in ru and "«Контент»" in ru and "штрихкод" in ru
    assert "Feedbacks and questions" in en and "Content" in en and "barcode" in en


def test_read_only_sandbox_and_base_tokens_are_explained() -> None:
    later = NOW + timedelta(days=90)
    read_only = inspect_token(make_token(read_only=True, expires_at=later))
    assert [p.code for p in token_problems(read_only, now=NOW)] == ["read_only"]
    assert token_problems(read_only, need_write=False, now=NOW) == []
    sandbox = inspect_token(make_token(kind="test", expires_at=later))
    assert "sandbox" in {p.code for p in token_problems(sandbox, now=NOW)}
    base = inspect_token(make_token(kind="base", expires_at=later))
    base_en = " ".join(explain_missing(base, lang="en", now=NOW))
    assert "5 feedback requests" in base_en and "personal token" in base_en


@pytest.mark.parametrize(
    ("token", "needle"),
    [
        ("", "three parts"),
        ("onlyonepart", "three parts"),
        ("two.parts", "three parts"),
        ("a.b.c.d", "three parts"),
        (f"{b64(b'{}')}.!!!notbase64!!!.sig", "payload is not base64url"),
        (f"{b64(b'{}')}.a.sig", "payload is not base64url"),  # impossible length
        (f"{b64(b'{}')}.{b64(b'not json at all')}.sig", "payload is not JSON"),
        (f"{b64(b'{}')}.{b64(bytes([0xFF, 0xFE, 0x00]))}.sig", "payload is not JSON"),
        (f"{b64(b'{}')}.{b64(b'[1, 2]')}.sig", "must be JSON objects"),
        (f"{b64(b'nope')}.{b64(b'{}')}.sig", "header is not JSON"),
        (jwt({"exp": "tomorrow"}), "'exp' should be a number"),
        (jwt({"s": True}), "'s' should be a number"),
    ],
)
def test_malformed_tokens_raise_a_clear_value_error(token: str, needle: str) -> None:
    with pytest.raises(ValueError, match="WB token") as info:
        inspect_token(token)
    assert needle in str(info.value)


@given(st.sets(st.sampled_from(sorted(CATEGORY_BITS))), st.booleans(), st.sampled_from(list(TokenType)[:4]))
def test_made_tokens_round_trip(categories: set[str], read_only: bool, kind: TokenType) -> None:
    info = inspect_token(make_token(categories=categories, read_only=read_only, kind=kind))
    assert info.categories == categories
    assert info.read_only is read_only
    assert info.token_type is kind
    assert info.sandbox is (kind is TokenType.TEST)


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_with_anything_but_value_error(text: str) -> None:
    try:
        inspect_token(text)
    except ValueError:
        pass
