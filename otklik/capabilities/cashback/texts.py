"""The buyer's texts of every stage. A campaign may override each (`CashbackCampaign.texts`); placeholders
are `{name}` only (no format expressions), filled from a fixed set of values."""

from __future__ import annotations

import re
from collections.abc import Mapping

DEFAULTS: dict[str, str] = {
    "no_campaign": "Сейчас акций с бонусом за отзыв нет. Спасибо, что спросили!",
    "ended": "Акция «{campaign}» завершилась — заявки больше не принимаются. Спасибо, что вы с нами!",
    "exhausted": "Бюджет акции «{campaign}» исчерпан — новые заявки не принимаются. Спасибо за интерес!",
    "not_here": "В этом чате бонусы за отзывы не оформляются. Если есть вопрос о товаре — напишите, поможем.",
    "choose_campaign": "Выберите акцию:",
    "terms": (
        "Бонус {amount} за любой честный отзыв о товаре на Wildberries — не только за 5 звёзд. "
        "Один бонус на товар. Для выплаты понадобятся телефон для СБП и банк или номер карты: "
        "нажимая «Согласен», вы разрешаете обработать их только для выплаты — мы удалим их через "
        "{erase_days} дн. после перечисления."
    ),
    "declined": "Хорошо! Когда оставите отзыв, напишите «бонус» — и пришлите скриншот.",
    "product": "Какой товар? Выберите кнопкой или пришлите артикул WB (nmId) или ссылку на товар.",
    "product_unknown": "Этого товара нет в акции. Выберите кнопкой или пришлите артикул (nmId) из ссылки на товар.",
    "product_taken": "За товар «{product}» заявка уже есть — по условиям акции один бонус на товар.",
    "screenshot": (
        "Оставьте отзыв о товаре «{product}» на Wildberries и пришлите сюда скриншот опубликованного отзыва "
        "(картинкой): чтобы были видны текст отзыва, ваше имя и дата."
    ),
    "need_image": "Нужен скриншот отзыва — картинка (JPG или PNG), а не текст.",
    "not_image_file": "Это файл «{file}», а не картинка. Пришлите скриншот отзыва как фото (JPG или PNG).",
    "too_large": "Файл слишком большой. Пришлите обычный скриншот экрана (до {mb} МБ).",
    "bad_image": "Не получилось открыть картинку: {problem}. Пришлите скриншот ещё раз.",
    "approved": "Отзыв найден и проверен — бонус {amount} одобрен!",
    "moderation": "Скриншот получен, спасибо! Менеджер проверит отзыв и напишет здесь.",
    "moderation_slow": (
        "Скриншот получен, спасибо! Сейчас не удаётся автоматически сверить отзыв с Wildberries, "
        "поэтому проверка займёт больше времени — менеджер напишет здесь."
    ),
    "already_rewarded": "За этот отзыв бонус уже начислен по другой заявке: один отзыв — один бонус.",
    "payout": (
        "Куда перечислить бонус? Напишите телефон для СБП и банк (например: +7 916 123-45-67 Сбербанк) или номер карты."
    ),
    "payout_saved": "Спасибо! Реквизиты сохранены: {masked}. Мы сообщим, когда бонус будет перечислен.",
    "payout_card_luhn": "Номер карты не прошёл проверку — возможно, опечатка. Проверьте и пришлите ещё раз.",
    "payout_phone": "Не похоже на российский мобильный номер. Пример: +7 916 123-45-67 Сбербанк.",
    "payout_bank": "Укажите ещё банк для СБП, например: +7 916 123-45-67 Сбербанк.",
    "payout_unrecognised": (
        "Не понял реквизиты. Напишите телефон для СБП и банк (+7 916 123-45-67 Сбербанк) или номер карты."
    ),
    "nudge_screenshot": "Напоминаем: чтобы получить бонус {amount}, пришлите скриншот опубликованного отзыва.",
    "nudge_payout": "Напоминаем: чтобы перечислить бонус {amount}, напишите телефон для СБП и банк или номер карты.",
    "status_none": "У вас пока нет заявок на бонус за отзыв.",
    "status_terms": "Заявка №{claim}: ждём вашего согласия с условиями.",
    "status_product": "Заявка №{claim}: выберите товар.",
    "status_screenshot": "Заявка №{claim} ({product}): ждём скриншот опубликованного отзыва.",
    "status_moderation": "Заявка №{claim} ({product}): на проверке у менеджера.",
    "status_approved": "Заявка №{claim} ({product}): бонус {amount} одобрен, скоро перечислим.",
    "status_rejected": "Заявка №{claim} ({product}) отклонена: {reason}",
    "status_paid": "Заявка №{claim} ({product}): бонус {amount} перечислен.",
    "status_cancelled": "Заявка №{claim} отменена.",
    "status_payout_missing": "Для выплаты нужны реквизиты: телефон для СБП и банк или номер карты.",
    "notify_approved": "Заявка №{claim}: бонус {amount} за отзыв о товаре «{product}» одобрен!",
    "notify_rejected": "Заявка №{claim} отклонена: {reason}",
    "notify_better_screenshot": "Заявка №{claim}: пришлите, пожалуйста, более чёткий скриншот отзыва. {note}",
    "notify_paid": "Бонус {amount} по заявке №{claim} перечислен ({masked}). Спасибо за отзыв!",
    "reason_not_found": "мы не нашли этот отзыв на Wildberries.",
    "reason_not_ours": "отзыв оставлен на товар другого продавца.",
    "reason_duplicate": "этот скриншот уже присылали по другой заявке.",
    "reason_already_rewarded": "за этот отзыв бонус уже начислен.",
    "reason_condition": "отзыв не подходит под условия акции.",
    "reason_unreadable": "на скриншоте не видно отзыва.",
    "reason_other": "заявка не соответствует условиям акции.",
}
BUTTONS: dict[str, str] = {
    "agree": "Согласен",
    "decline": "Не сейчас",
    "status": "Статус заявки",
    "new": "Новая заявка",
}
STATUS_WORDS = frozenset({"статус", "статус заявки", "/status", "status", "где бонус", "где мой бонус"})
AGREE_WORDS = frozenset({"да", "согласен", "согласна", "ок", "ok", "хорошо", "1"})
DECLINE_WORDS = frozenset({"нет", "не сейчас", "позже", "потом", "2"})
#: Texts a seller may edit on the campaign page, in this order.
EDITABLE = tuple(DEFAULTS)
MAX_TEXT = 1000
_PLACEHOLDER = re.compile(r"\{([a-z_]{1,20})\}")


def text(key: str, overrides: Mapping[str, object] | None = None, **values: object) -> str:
    """The campaign's text for `key` (or the default), with `{name}` placeholders filled."""
    template = str((overrides or {}).get(key) or DEFAULTS.get(key, key))

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(fill, template)


def clean_overrides(given: Mapping[str, str]) -> dict[str, str]:
    """Keep only known keys whose text differs from the default, trimmed to MAX_TEXT."""
    out = {}
    for key, value in given.items():
        value = (value or "").strip().replace("\r\n", "\n")[:MAX_TEXT]
        if key in DEFAULTS and value and value != DEFAULTS[key]:
            out[key] = value
    return out
