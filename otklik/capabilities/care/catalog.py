"""The seller's WB product cards cached in the database: barcode -> product and size.

`sync_cards` pulls changed cards with the cursor saved by the previous run (incremental); `find_barcode`
answers "is this barcode ours, which product and size?" without calling WB.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import WBProduct
from otklik.adapters.wildberries import Card, CardsCursor, WBClient
from otklik.capabilities.care.models import WBBarcode
from otklik.capabilities.care.syncstate import load_state, save_state
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx

if TYPE_CHECKING:
    from otklik.conversations.timers import QuickTx


@dataclass(frozen=True, slots=True)
class ProductMatch:
    """A barcode found in the cached cards."""

    barcode: str
    nm_id: int
    vendor_code: str
    title: str
    tech_size: str
    wb_size: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "barcode": self.barcode,
            "nm_id": self.nm_id,
            "vendor_code": self.vendor_code,
            "title": self.title,
            "size": self.tech_size or self.wb_size,
            "tech_size": self.tech_size,
            "wb_size": self.wb_size,
        }


async def find_barcode(session: AsyncSession, barcode: str, account_id: int | None = None) -> ProductMatch | None:
    """The cached card and size of `barcode` (any WB account of this install unless one is named)."""
    query = (
        select(WBBarcode, WBProduct)
        .join(
            WBProduct,
            (WBProduct.channel_account_id == WBBarcode.channel_account_id) & (WBProduct.nm_id == WBBarcode.nm_id),
        )
        .where(WBBarcode.barcode == barcode)
        .order_by(WBBarcode.id)
        .limit(1)
    )
    if account_id is not None:
        query = query.where(WBBarcode.channel_account_id == account_id)
    row = (await session.execute(query)).first()
    if row is None:
        return None
    code, product = row
    return ProductMatch(barcode, product.nm_id, product.vendor_code, product.title, code.tech_size, code.wb_size)


async def count_products(session: AsyncSession, account_id: int | None = None) -> int:
    query = select(func.count()).select_from(WBProduct)
    if account_id is not None:
        query = query.where(WBProduct.channel_account_id == account_id)
    return int(await session.scalar(query) or 0)


async def store_card(session: AsyncSession, account_id: int, card: Card, now: datetime) -> int:
    """Insert or replace one card and its barcodes; returns the number of barcodes."""
    product = await session.scalar(
        select(WBProduct).where(WBProduct.channel_account_id == account_id, WBProduct.nm_id == card.nm_id)
    )
    if product is None:
        product = WBProduct(channel_account_id=account_id, nm_id=card.nm_id, synced_at=now)
        session.add(product)
    product.vendor_code, product.title = card.vendor_code[:120], card.title[:300]
    product.brand, product.subject = card.brand[:120], card.subject_name[:120]
    product.wb_updated_at, product.synced_at = card.updated_at[:40], now
    await session.execute(
        delete(WBBarcode).where(WBBarcode.channel_account_id == account_id, WBBarcode.nm_id == card.nm_id)
    )
    barcodes = {sku.strip(): size for size in card.sizes for sku in size.skus if sku.strip() and len(sku.strip()) <= 32}
    if barcodes:
        # a barcode moved from another card: the newest card owns it
        await session.execute(
            delete(WBBarcode).where(WBBarcode.channel_account_id == account_id, WBBarcode.barcode.in_(list(barcodes)))
        )
    for sku, size in barcodes.items():
        session.add(
            WBBarcode(
                channel_account_id=account_id,
                barcode=sku,
                nm_id=card.nm_id,
                chrt_id=size.chrt_id,
                tech_size=size.tech_size[:64],
                wb_size=size.wb_size[:64],
            )
        )
    await session.flush()
    return len(barcodes)


@dataclass(frozen=True, slots=True)
class CardsSync:
    cards: int
    barcodes: int
    pages: int


async def sync_cards(db: Database, client: WBClient, account_id: int, *, full: bool = False) -> CardsSync:
    """Fetch cards changed since the saved cursor (all when `full`), page by page.

    Each page is committed with the cursor that follows it, so an interrupted sync (429 past the wait
    budget, WB down, a crash) resumes where it stopped and loses nothing.
    """
    state = await load_state(db, account_id)
    raw = None if full else state.get("cards_cursor")
    since = CardsCursor.model_validate(raw) if raw else None
    cards = barcodes = pages = 0
    async for page in client.iter_card_pages(since=since):
        pages += 1
        now = utcnow()
        async with db.write() as session:
            for card in page.cards:
                barcodes += await store_card(session, account_id, card, now)
                cards += 1
            if page.cards and page.cursor.updated_at is not None and page.cursor.nm_id is not None:
                cursor = {"updatedAt": page.cursor.updated_at, "nmID": page.cursor.nm_id}
                await save_state(session, account_id, cards_cursor=cursor, cards_synced_at=now.isoformat())
    return CardsSync(cards, barcodes, pages)


@dataclass(frozen=True, slots=True)
class NamedProduct:
    nm_id: int
    title: str
    shared: int  # content words the buyer's text and the card title have in common


_TITLES = select(WBProduct.nm_id, WBProduct.title).limit(5000)


async def product_in_text(tx: QuickTx | AsyncSession, text: str, *, language: str = "ru") -> NamedProduct | None:
    """The cached card whose title the buyer names ("после разогревающего геля…" -> "Гель-смазка
    разогревающая"): the most shared content lemmas, at least two, and no tie. One Core statement: an ORM
    session, or the quick action's step transaction."""
    from otklik.conversations.nlu.text import lemmas

    words = {w for w in lemmas(text[:1000], language) if len(w) > 2}
    if not words:
        return None
    rows = await as_tx(tx).fetch(_TITLES)
    scored = sorted(
        ((len(words & {w for w in lemmas(title, language) if len(w) > 2}), nm_id, title) for nm_id, title in rows),
        reverse=True,
    )
    if not scored or scored[0][0] < 2 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    shared, nm_id, title = scored[0]
    return NamedProduct(nm_id, title, shared)
