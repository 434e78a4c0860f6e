"""Demo data for a newcomer: on the server's first start on an empty demo install, a few reviews with
care categories, care incidents, and a cashback campaign with claims in several states and a payout, so
each admin page shows what it is for before a WB key is connected.

Every demo row's id is recorded in the `demo_data` setting; `remove_demo_data` (owner only, one click
in the admin) deletes exactly those rows (and what hangs off them, e.g. messages of a demo conversation)
and nothing else. The setting stays (`removed_at`), so demo data is never seeded again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import (
    Base,
    ChannelAccount,
    Contact,
    ContactIdentity,
    Conversation,
    Message,
    Setting,
)
from otklik.capabilities.care.models import CareIncident, WBFeedback
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.clock import utcnow
from otklik.conversations.statuses import MessageStatus
from otklik.core.conversation import Status
from otklik.core.errors import NotFound
from otklik.platform.audit import audit

DEMO_KEY = "demo_data"
DEMO_ACCOUNT = "demo-wildberries"
#: Deletion order: children before parents (every id listed here was created by `seed_demo_data`).
TABLES: tuple[tuple[str, type[Base]], ...] = (
    ("cashback_claims", CashbackClaim),
    ("cashback_campaigns", CashbackCampaign),
    ("care_incidents", CareIncident),
    ("wb_feedbacks", WBFeedback),
    ("messages", Message),
    ("conversations", Conversation),
    ("contact_identities", ContactIdentity),
    ("contacts", Contact),
    ("channel_accounts", ChannelAccount),
)
#: Tables whose rows mean "this install already has real data": then nothing is seeded.
_REAL_DATA: tuple[type[Base], ...] = (WBFeedback, CareIncident, CashbackCampaign, CashbackClaim)

_REVIEWS: tuple[tuple[int, str, str, str, str | None, int], ...] = (
    # rating, text, pros, cons, category, days ago
    (1, "Пришёл не тот цвет: заказывала синий, а пришёл серый.", "", "пересорт", "wrong_item", 1),
    (2, "Шов разошёлся после первой стирки.", "цвет", "качество шва", "defective_item", 2),
    (2, "Маломерит на размер, пришлось вернуть.", "", "размер", "size_fit", 3),
    (3, "Доставка шла две недели, коробка мятая.", "сам товар норм", "упаковка", "delivery_issue", 4),
    (1, "Сильный химический запах, не выветривается.", "", "запах", "smell", 5),
    (5, "Отличная вещь, всё подошло, рекомендую!", "качество, цена", "", None, 6),
    (4, "Хорошо, но дороговато.", "удобно", "цена", "price", 8),
    (5, "Всё как на фото, спасибо продавцу.", "соответствует описанию", "", None, 10),
)
_INCIDENTS: tuple[tuple[str, str, int | None, str], ...] = (
    # category, outcome, rating, phrase (the buyer's words)
    ("wrong_item", "resolved_by_bot", 5, "мне прислали не тот товар"),
    ("defective_item", "handed_off", 4, "у куртки сломана молния"),
    ("return_refund", "resolved_by_bot", None, "как вернуть деньги за заказ"),
    ("delivery_issue", "unresolved", 2, "заказ не пришёл, хотя срок прошёл"),
)
_BUYERS = ("Демо: Анна", "Демо: Игорь", "Демо: Мария", "Демо: Олег")


async def demo_state(db: Database) -> dict[str, Any] | None:
    async with db.read() as session:
        row = await session.get(Setting, DEMO_KEY)
        return dict(row.value) if row else None


async def has_demo_data(db: Database) -> bool:
    state = await demo_state(db)
    return bool(state and not state.get("removed_at") and any(state.get("rows", {}).values()))


async def _has_real_data(session: AsyncSession) -> bool:
    for model in _REAL_DATA:
        if await session.scalar(select(func.count()).select_from(model)):
            return True
    return False


async def seed_demo_data(db: Database, vault: Vault, *, pack: str, chat_account_id: int) -> dict[str, list[int]] | None:
    """Seed once per install (first start, empty install); the ids go to the `demo_data` setting.

    Returns the ids per table, or None when nothing was seeded (seeded before, or real data exists)."""
    from otklik.capabilities.cashback.payouts import seal
    from otklik.capabilities.cashback.rules import PayoutDetails, Stage

    now = utcnow()
    async with db.write() as session:
        if await session.get(Setting, DEMO_KEY, with_for_update=True) is not None:
            return None
        if await _has_real_data(session):  # an install in use: never mix demo rows into real ones
            session.add(Setting(key=DEMO_KEY, value={"skipped": "the install has data"}, updated_at=now))
            return None
        rows: dict[str, list[Base]] = {name: [] for name, _model in TABLES}

        def add(table: str, row: Base) -> Any:
            session.add(row)
            rows[table].append(row)
            return row

        wb = add(
            "channel_accounts",
            ChannelAccount(
                kind="wildberries", name=DEMO_ACCOUNT, pack=pack, config={"demo": True}, enabled=True, created_at=now
            ),
        )
        await session.flush()
        for n, (rating, text, pros, cons, category, days) in enumerate(_REVIEWS, 1):
            when = now - timedelta(days=days, hours=n)
            add(
                "wb_feedbacks",
                WBFeedback(
                    channel_account_id=wb.id,
                    feedback_id=f"demo-{n}",
                    nm_id=100_000 + n % 3,
                    product_name=("Куртка демо", "Платье демо", "Кроссовки демо")[n % 3],
                    supplier_article=f"DEMO-{n % 3}",
                    size=("M", "S", "42")[n % 3],
                    rating=rating,
                    text=text,
                    pros=pros,
                    cons=cons,
                    photo_count=n % 2,
                    order_status="buyout",
                    created_date=when,
                    negative=rating <= 3,
                    category=category,
                    confidence=85 if category else None,
                    classified_by="offline" if category else "",
                    imported_at=now,
                    updated_at=now,
                ),
            )
        conversations: list[Conversation] = []
        for n, buyer in enumerate(_BUYERS):
            when = now - timedelta(days=n + 1)
            contact = add("contacts", Contact(display_name=buyer, language="ru", created_at=when, last_seen_at=when))
            await session.flush()
            identity = add(
                "contact_identities",
                ContactIdentity(
                    contact_id=contact.id,
                    channel_account_id=chat_account_id,
                    external_id=f"demo-{uuid.uuid4().hex}",
                    created_at=when,
                ),
            )
            await session.flush()
            category, outcome, stars, phrase = _INCIDENTS[n]
            conversation = add(
                "conversations",
                Conversation(
                    contact_id=contact.id,
                    identity_id=identity.id,
                    channel_account_id=chat_account_id,
                    status=Status.CLOSED,
                    last_message_at=when,
                    last_text=phrase[:200],
                    closed_at=when,
                    created_at=when,
                    updated_at=when,
                ),
            )
            await session.flush()
            conversations.append(conversation)
            for direction, author, text in (
                ("in", "buyer", phrase),
                ("out", "bot", "Это демо-диалог: так выглядит переписка покупателя с ботом."),
            ):
                add(
                    "messages",
                    Message(
                        conversation_id=conversation.id,
                        direction=direction,
                        author=author,
                        kind="text",
                        text=text,
                        status=MessageStatus.RECEIVED if direction == "in" else MessageStatus.DELIVERED,
                        created_at=when,
                    ),
                )
            add(
                "care_incidents",
                CareIncident(
                    conversation_id=conversation.id,
                    case_key=f"demo-{n}",
                    channel_account_id=chat_account_id,
                    category=category,
                    product=str(100_000 + n % 3),
                    outcome=outcome,
                    rating=stars,
                    phrase=phrase,
                    details={"demo": True},
                    created_at=when,
                    updated_at=when,
                ),
            )
        campaign = add(
            "cashback_campaigns",
            CashbackCampaign(
                name="Демо: кешбэк 150 ₽ за отзыв",
                status="paused",  # never offered to a real buyer
                all_products=False,
                products={"items": [{"nm_id": 100_001, "name": "Платье демо"}]},
                reward_kopecks=15_000,
                condition="photo",
                budget_kopecks=1_500_000,
                max_claims=100,
                starts_at=now - timedelta(days=7),
                created_by="demo",
                created_at=now - timedelta(days=7),
                updated_at=now,
            ),
        )
        await session.flush()
        card = PayoutDetails("sbp", phone="+79990000000", bank="Демо-банк")
        for n, state in enumerate((Stage.MODERATION, Stage.APPROVED, Stage.REJECTED, Stage.PAID)):
            conversation = conversations[n]
            when = now - timedelta(days=n + 1)
            decided = state in (Stage.APPROVED, Stage.REJECTED, Stage.PAID)
            rewarded = state in (Stage.APPROVED, Stage.PAID)
            add(
                "cashback_claims",
                CashbackClaim(
                    campaign_id=campaign.id,
                    contact_id=conversation.contact_id,
                    conversation_id=conversation.id,
                    channel_account_id=chat_account_id,
                    state=str(state),
                    nm_id=100_001,
                    product_name="Платье демо",
                    amount_kopecks=15_000,
                    checks={
                        "items": [
                            {"name": "image", "result": "pass", "detail": "PNG 1080×2340 (demo)"},
                            {"name": "duplicate", "result": "pass", "detail": "no earlier screenshot is similar"},
                            {
                                "name": "wb_match",
                                "result": "pass" if rewarded else "warn",
                                "detail": "demo review" if rewarded else "no certain match (demo)",
                            },
                        ]
                    },
                    reasons={"items": ["needs_review"]} if state == Stage.MODERATION else {},
                    wb_feedback_id=f"demo-{n + 1}" if rewarded else None,
                    rewarded_feedback_id=f"demo-{n + 1}" if rewarded else None,
                    reject_reason="condition" if state == Stage.REJECTED else None,
                    reject_text="В отзыве нет фото (демо)." if state == Stage.REJECTED else "",
                    payout_method="sbp" if rewarded else None,
                    payout_secret=seal(vault, card) if rewarded else None,
                    payout_masked=card.masked() if rewarded else "",
                    decided_by="demo" if decided else "",
                    paid_by="demo" if state == Stage.PAID else "",
                    consent_at=when,
                    screenshot_at=when,
                    moderation_at=when,
                    decided_at=when if decided else None,
                    paid_at=when if state == Stage.PAID else None,
                    created_at=when,
                    updated_at=when,
                ),
            )
        await session.flush()
        ids = {table: [int(row.id) for row in items] for table, items in rows.items()}  # type: ignore[attr-defined]
        session.add(Setting(key=DEMO_KEY, value={"seeded_at": now.isoformat(), "rows": ids}, updated_at=now))
        audit(session, "demo", "demo.seed", "setting", DEMO_KEY, {t: len(v) for t, v in ids.items()})
        return ids


async def remove_demo_data(db: Database, actor: str) -> dict[str, int]:
    """Delete exactly the recorded demo rows (children first); audited. Returns rows deleted per table."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(Setting, DEMO_KEY, with_for_update=True)
        if row is None or row.value.get("removed_at") or not any((row.value.get("rows") or {}).values()):
            raise NotFound("there is no demo data to remove")
        recorded: dict[str, list[int]] = dict(row.value.get("rows") or {})
        deleted: dict[str, int] = {}
        for table, model in TABLES:
            ids = [int(i) for i in recorded.get(table, [])]
            if ids:
                result = await session.execute(
                    delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)  # type: ignore[attr-defined]
                )
                deleted[table] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        row.value = {**row.value, "rows": {}, "removed_at": now.isoformat(), "removed_by": actor[:120]}
        row.updated_at = now
        audit(session, actor, "demo.remove", "setting", DEMO_KEY, {"deleted": deleted})
        return deleted
