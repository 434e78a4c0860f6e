"""Care's demo rows (`Capability.demo`): WB reviews with care categories on the demo WB account, and a care
incident for each demo conversation, so the reviews and incidents pages show what they are for."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from otklik.capabilities.care.models import CareIncident, WBFeedback

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from otklik.platform.demo import DemoSeed

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
_INCIDENTS: tuple[tuple[str, str, int | None], ...] = (
    # category, outcome, rating — one per demo conversation, in order
    ("wrong_item", "resolved_by_bot", 5),
    ("defective_item", "handed_off", 4),
    ("return_refund", "resolved_by_bot", None),
    ("delivery_issue", "unresolved", 2),
)


async def seed(session: AsyncSession, demo: DemoSeed) -> None:
    now = demo.now
    for n, (rating, text, pros, cons, category, days) in enumerate(_REVIEWS, 1):
        demo.add(
            "wb_feedbacks",
            WBFeedback(
                channel_account_id=demo.wb_account_id,
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
                created_date=now - timedelta(days=days, hours=n),
                negative=rating <= 3,
                category=category,
                confidence=85 if category else None,
                classified_by="offline" if category else "",
                imported_at=now,
                updated_at=now,
            ),
        )
    for n, (conversation, (category, outcome, stars)) in enumerate(zip(demo.conversations, _INCIDENTS, strict=False)):
        demo.add(
            "care_incidents",
            CareIncident(
                conversation_id=conversation.id,
                case_key=f"demo-{n}",
                channel_account_id=demo.chat_account_id,
                category=category,
                product=str(100_000 + n % 3),
                outcome=outcome,
                rating=stars,
                phrase=conversation.text[:300],
                details={"demo": True},
                created_at=conversation.at,
                updated_at=conversation.at,
            ),
        )
