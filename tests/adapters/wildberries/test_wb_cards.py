"""Product cards against the fake WB server: cursor paging, barcodes per size, barcode lookup."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from otklik.adapters.wildberries import WBClient, WBForbidden
from otklik.testing.fake_wb import FakeCard, FakeSize, FakeWB, ean13, make_token, sample_cards

MakeClient = Callable[..., WBClient]


async def test_cursor_paging_over_250_cards_returns_each_once_with_barcodes(fake: FakeWB, client: WBClient) -> None:
    fake.add_cards(sample_cards(250, seed=7))
    cards = await client.card_barcodes()
    assert Counter(c.nm_id for c in cards) == Counter(list(fake.cards))
    for card in cards:
        source = fake.cards[card.nm_id]
        assert (card.vendor_code, card.title, card.brand) == (source.vendor_code, source.title, source.brand)
        assert [(s.chrt_id, s.tech_size, s.wb_size, s.skus) for s in card.sizes] == [
            (s.chrt_id, s.tech_size, s.wb_size, s.skus) for s in source.sizes
        ]
        assert len(card.barcodes) == 3
    requests = [c.body["settings"] for c in fake.calls_to("/content/v2/get/cards/list")]
    assert len(requests) == 3  # 100 + 100 + 50
    assert requests[0]["cursor"] == {"limit": 100}
    assert requests[0]["sort"] == {"ascending": True} and requests[0]["filter"] == {"withPhoto": -1}
    assert set(requests[1]["cursor"]) == {"limit", "updatedAt", "nmID"}


async def test_cards_with_equal_updated_at_are_not_lost(fake: FakeWB, client: WBClient) -> None:
    same = datetime(2026, 2, 1, tzinfo=UTC)
    fake.add_cards(FakeCard(nm_id=1000 + i, vendor_code=f"V{i}", updated_at=same) for i in range(230))
    ids = [card.nm_id async for card in client.iter_cards()]
    assert sorted(ids) == sorted(fake.cards) and len(ids) == len(set(ids))


async def test_exact_multiple_of_the_limit_stops_on_an_empty_page(fake: FakeWB, client: WBClient) -> None:
    fake.add_cards(sample_cards(200))
    pages = [page async for page in client.iter_card_pages()]
    assert [len(p.cards) for p in pages] == [100, 100, 0]


async def test_incremental_sync_from_a_saved_cursor(fake: FakeWB, client: WBClient) -> None:
    fake.add_cards(sample_cards(120))
    pages = [page async for page in client.iter_card_pages()]
    saved = [p for p in pages if p.cards][-1].cursor
    changed = fake.cards[101_000_005]
    changed.updated_at = datetime(2030, 1, 1, tzinfo=UTC)
    fake.add_cards([FakeCard(nm_id=7, vendor_code="NEW", updated_at=datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC))])
    fresh = [card.nm_id async for card in client.iter_cards(since=saved)]
    assert fresh == [101_000_005, 7]


async def test_find_barcode_matches_exactly_and_returns_the_size(fake: FakeWB, client: WBClient) -> None:
    barcode = ean13("460123456789")
    fake.add_cards(
        [
            FakeCard(
                nm_id=42,
                vendor_code="GEL-1",
                title="Гель",
                brand="Демо",
                sizes=[FakeSize(1, "S", "42", [ean13("460000000001")]), FakeSize(2, "M", "44", [barcode])],
            )
        ]
    )
    match = await client.find_barcode(f" {barcode} ")
    assert match is not None
    assert (match.nm_id, match.chrt_id, match.tech_size, match.wb_size, match.vendor_code) == (
        42,
        2,
        "M",
        "44",
        "GEL-1",
    )
    assert fake.calls[-1].body["settings"]["filter"]["textSearch"] == barcode
    # WB's search also matches parts and articles: a partial barcode is found by the search, but not ours.
    assert await client.find_barcode(barcode[:8]) is None
    assert await client.find_barcode("GEL-1") is None
    assert await client.find_barcode("4600000000999") is None
    assert await client.find_barcode("") is None


async def test_cards_need_the_content_category(fake: FakeWB, make_client: MakeClient) -> None:
    client = make_client(fake.allow(make_token(categories=["feedbacks"])))
    with pytest.raises(WBForbidden, match="Ошибка авторизации"):  # [PROD]: the data/error envelope
        await client.list_cards()


async def test_promotion_category_also_opens_the_cards_list(fake: FakeWB, make_client: MakeClient) -> None:
    client = make_client(fake.allow(make_token(categories=["promotion"])))
    assert (await client.list_cards()).cards == []


async def test_limit_above_100_is_refused_locally(fake: FakeWB, client: WBClient) -> None:
    with pytest.raises(ValueError, match="limit"):
        await client.list_cards(limit=101)
    assert fake.calls == []
