"""Pure rendering helpers: splitting, escaping, callback data."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.channels.telegram.render import (
    InMemoryCallbackStore,
    encode_callback,
    escape,
    split_text,
    utf16_len,
)
from otklik.testing.fake_telegram import parse_html


def words_of(text: str) -> list[str]:
    return text.split()


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab яж😀\n\n  &<>")),
        max_size=600,
    ),
    st.integers(min_value=2, max_value=80),
)
def test_split_text_keeps_every_character_within_the_limit(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(chunk and chunk == chunk.strip() for chunk in chunks)
    assert all(utf16_len(chunk) <= limit for chunk in chunks)
    # Nothing lost or reordered: only whitespace at the cuts may disappear.
    assert re.sub(r"\s", "", "".join(chunks)) == re.sub(r"\s", "", text)


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    text = "aaaa bbbb\ncccc\n\ndddd"
    assert split_text(text, 15) == ["aaaa bbbb\ncccc", "dddd"]
    assert split_text("aaaa bbbb\ncccc dddd", 12) == ["aaaa bbbb", "cccc dddd"]
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_never_cuts_an_emoji_in_half() -> None:
    chunks = split_text("😀" * 5, 3)  # each emoji is 2 UTF-16 units
    assert chunks == ["😀", "😀", "😀", "😀", "😀"]


@given(st.text(max_size=300))
def test_escaped_text_parses_back_to_itself(text: str) -> None:
    shown, entities = parse_html(escape(text))
    assert shown == text
    assert entities == []


async def test_encode_callback() -> None:
    store = InMemoryCallbackStore()
    assert await encode_callback("care:defect", store) == "care:defect"
    long = "p" * 65
    encoded = await encode_callback(long, store)
    assert encoded.startswith("~") and len(encoded) <= 64
    assert encoded == await encode_callback(long, store)  # stable key: no growth on broadcasts
    assert await store.get(encoded[1:]) == long
    tricky = "~looks-like-a-key"
    assert (await encode_callback(tricky, store)) != tricky  # never confused with a key
    assert await store.get((await encode_callback(tricky, store))[1:]) == tricky


async def test_memory_store_is_bounded() -> None:
    store = InMemoryCallbackStore(max_items=2)
    keys = [await store.put(f"payload-{i}") for i in range(3)]
    assert await store.get(keys[0]) is None
    assert await store.get(keys[2]) == "payload-2"


@pytest.mark.parametrize(
    ("html", "text", "entity"),
    [
        ("<b>жирный</b> текст", "жирный текст", {"type": "bold", "offset": 0, "length": 6}),
        (
            '<a href="https://wb.ru">WB</a>',
            "WB",
            {"type": "text_link", "offset": 0, "length": 2, "url": "https://wb.ru"},
        ),
        ("😀<i>x</i>", "😀x", {"type": "italic", "offset": 2, "length": 1}),
    ],
)
def test_fake_html_parser_matches_telegram(html: str, text: str, entity: dict[str, object]) -> None:
    assert parse_html(html) == (text, [entity])
