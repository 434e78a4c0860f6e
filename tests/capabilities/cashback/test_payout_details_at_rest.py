"""Issue 13, "payout details reach the disk in plain text": a card number typed at the payout-details step
was written into the conversation state (and so into the SQLite WAL) before it was masked. Now nothing the
database holds — any text column of any table, and on SQLite the raw bytes of the file and its WAL — carries
the number; it lives only Fernet-encrypted on the claim."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, String, Text, select

from otklik.adapters.db.models import Base, Conversation, Message
from otklik.capabilities.cashback import payouts
from otklik.core.redact import MASK
from tests.capabilities.cashback.conftest import Buyer, Shop
from tests.capabilities.cashback.test_journey_webchat import anna_screenshot, claims, new_buyer_at_screenshot

CARD = "5536 9138 2345 6781"  # Luhn-valid
DIGITS = CARD.replace(" ", "")
TYPO = "5536 9138 2345 6782"  # fails Luhn: asked again, must not be kept either


async def every_text_value(shop: Shop) -> list[str]:
    """Every string/JSON column of every table, as text."""
    values: list[str] = []
    async with shop.app.db.read() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                values += [str(v) for v in row if v is not None]
    return values


def db_bytes(url: str) -> bytes:
    path = Path(url.split("///", 1)[1])
    wal = Path(f"{path}-wal")
    assert path.exists()
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_payout_details_reach_the_disk_in_plain_text(shop: Shop, db_url: str) -> None:
    buyer: Buyer = await new_buyer_at_screenshot(shop)
    await buyer.upload(anna_screenshot())
    await buyer.reply_with("Куда перечислить", timeout=60)  # approved or moderation: details are asked
    await buyer.send(text=TYPO)
    await buyer.reply_with("не прошёл проверку")
    await buyer.send(text=f"карта {CARD}")
    await buyer.reply_with("Реквизиты сохранены")

    (claim,) = await claims(shop)
    assert claim.payout_secret and claim.payout_masked.endswith("6781")
    assert payouts.unseal(shop.app.ctx.vault, claim.payout_secret).card == DIGITS

    async with shop.app.db.read() as session:
        typed = (
            await session.execute(
                select(Message.text, Message.payload)
                .where(Message.direction == "in", Message.text.like(f"%{MASK}%"))
                .order_by(Message.id)
            )
        ).all()
        preview, state = (await session.execute(select(Conversation.last_text, Conversation.state))).one()
    assert [t for t, _ in typed] == [f"{MASK} 6782", f"карта {MASK} 6781"]  # the operator sees the masked form
    assert all("sealed" not in p for _, p in typed)  # the encrypted copy for the step is dropped after use
    assert preview == f"карта {MASK} 6781"
    assert "5536" not in str(state)

    for secret in (DIGITS, TYPO.replace(" ", "")):
        for value in await every_text_value(shop):
            squeezed = value.replace(" ", "").replace("-", "").replace("\\xa0", "")
            assert secret not in squeezed, value[:300]
    if db_url.startswith("sqlite"):
        raw = db_bytes(db_url)
        for secret in (DIGITS, CARD, TYPO, TYPO.replace(" ", "")):
            assert secret.encode() not in raw, secret
