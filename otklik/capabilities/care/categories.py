"""Care categories shared by flows, incidents and review insights."""

from __future__ import annotations

#: Care flows (and incident categories). Same names as the care-ru intents.
CARE_CATEGORIES = (
    "wrong_item",
    "defective_item",
    "side_effect",
    "return_refund",
    "delivery_issue",
    "product_question",
    "other",
)
#: Review categories: the care categories that reviews show plus what only reviews talk about.
REVIEW_CATEGORIES = (
    "wrong_item",
    "defective_item",
    "side_effect",
    "return_refund",
    "delivery_issue",
    "size_fit",
    "smell",
    "packaging",
    "quality",
    "price",
    "other",
)
#: The label of reviews that praise: used by the classifier to tell negative text from positive text.
POSITIVE = "positive"
OUTCOMES = ("resolved_by_bot", "handed_off", "unresolved")

CATEGORY_TITLES_RU = {
    "wrong_item": "Не тот товар / пересорт",
    "defective_item": "Брак, повреждение",
    "side_effect": "Реакция, жжение",
    "return_refund": "Возврат, деньги",
    "delivery_issue": "Доставка",
    "product_question": "Вопрос о товаре",
    "size_fit": "Размер, посадка",
    "smell": "Запах",
    "packaging": "Упаковка",
    "quality": "Качество",
    "price": "Цена",
    "other": "Другое",
}
