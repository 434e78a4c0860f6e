"""Guardrails: every rule with texts that must be rejected and texts that must pass (ru, es, en)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.conversations.knowledge import Article, KnowledgeBase
from otklik.conversations.llm.guardrails import (
    CANARY,
    Grant,
    check_contacts,
    check_grounding,
    check_leak,
    check_medical,
    check_promises,
    check_reply,
    find_medical_claims,
    find_promises,
    grounding_support,
)
from otklik.conversations.llm.prompts import grounded_system_prompt

# --- 1. promises of money -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Мы вернём вам деньги в течение дня.", "refund"),
        ("Не переживайте, компенсируем.", "compensation"),
        ("Переведём 1000 рублей на вашу карту.", "payment"),
        ("Вам вернут деньги за заказ.", "refund"),
        ("Оформим вам возврат, не волнуйтесь.", "refund"),
        ("Мы выплатим компенсацию за неудобства.", "compensation"),
        ("Начислим бонусы на следующий заказ.", "bonus"),
        ("В качестве извинения дадим скидку на следующую покупку.", "discount"),
        ("Пришлём вам промокод.", "discount"),
        ("Le devolvemos el dinero.", "refund"),
        ("Le reintegramos el importe de la compra.", "refund"),
        ("Te vamos a hacer un reembolso completo.", "refund"),
        ("Le damos una bonificación por la demora.", "bonus"),
        ("Te hacemos un descuento en la próxima compra.", "discount"),
        ("Le transferimos 5000 pesos hoy.", "payment"),
        ("We will refund you today.", "refund"),
        ("We'll compensate you for the trouble.", "compensation"),
        ("We'll send you $20.", "payment"),
        ("You will get a 10% discount.", "discount"),
        ("Доставка обойдётся в 300 руб.", "amount"),
    ],
)
def test_money_promises_are_rejected(text: str, kind: str) -> None:
    assert f"promise:{kind}" in check_promises(text)
    verdict = check_reply(text, language="ru", channel_is_marketplace=False)
    assert not verdict.ok and f"promise:{kind}" in verdict.reasons


@pytest.mark.parametrize(
    "text",
    [
        "Спасибо за обращение! Мы передали вопрос оператору.",
        "Мы не вернём деньги сами: возврат оформляется через Wildberries.",
        "Деньги вернутся на карту по правилам Wildberries.",
        "Wildberries вернёт деньги за брак после проверки заявки.",
        "Мы не можем обещать компенсацию.",
        "Te enviamos la proforma con los datos de pago.",
        "No le devolvemos el dinero por este chat: la devolución se gestiona con un asesor.",
        "Please follow the instructions on the package.",
        "Срок годности указан на упаковке.",
    ],
)
def test_texts_without_promises_pass(text: str) -> None:
    assert check_promises(text) == []


def test_granted_promise_is_allowed_exactly() -> None:
    text = "Кэшбэк одобрен: переведём 300 рублей на вашу карту."
    assert set(check_promises(text)) == {"promise:payment", "promise:amount"}
    assert check_promises(text, [Grant("payment", 300)]) == []
    assert check_promises(text, [Grant("payment", Decimal("300.00"))]) == []
    assert set(check_promises(text, [Grant("payment", 500)])) == {"promise:payment", "promise:amount"}
    assert "promise:payment" in check_promises(text, [Grant("refund", 300)])
    # a grant without an amount allows the promise only when no amount is named
    assert check_promises("Переведём кэшбэк на карту.", [Grant("payment")]) == []
    assert check_promises(text, [Grant("payment")]) != []
    verdict = check_reply(text, language="ru", channel_is_marketplace=False, granted=[Grant("payment", 300)])
    assert verdict.ok, verdict.reasons


def test_amounts_are_parsed() -> None:
    amounts = {p.amount for p in find_promises("Начислим 1 500 ₽, а потом ещё $20 и 10%.") if p.kind == "amount"}
    assert amounts == {Decimal(1500), Decimal(20), Decimal(10)}


# --- 2. medical claims ----------------------------------------------------------------------------------


def _article(pack: str, article_id: str) -> Article:
    article = KnowledgeBase.from_pack(pack).get(article_id)
    assert article is not None
    return article


GEL = _article("care-ru", "warming-gel-sensation")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Это аллергия, так бывает.", "medical:diagnosis:allergy"),
        ("Скорее всего, это ожог.", "medical:diagnosis:burn"),
        ("Это не ожог, а аллергия.", "medical:diagnosis:allergy"),
        ("Похоже на дерматит.", "medical:diagnosis:dermatitis"),
        ("У вас молочница.", "medical:diagnosis:thrush"),
        ("Примите антигистаминное, например супрастин.", "medical:treatment:antihistamine"),
        ("Помажьте гидрокортизоновой мазью.", "medical:treatment:ointment"),
        ("Es una alergia leve.", "medical:diagnosis:allergy"),
        ("Parece una quemadura.", "medical:diagnosis:burn"),
        ("Tome un antihistamínico.", "medical:treatment:antihistamine"),
        ("It's an allergic reaction.", "medical:diagnosis:allergy"),
        ("Take an antihistamine and some ibuprofen.", "medical:treatment:antihistamine"),
    ],
)
def test_medical_claims_without_an_approved_article_are_rejected(text: str, reason: str) -> None:
    assert reason in check_medical(text, [GEL])
    assert reason in check_reply(text, language="ru", channel_is_marketplace=False).reasons


@pytest.mark.parametrize(
    "text",
    [
        "Это не ожог и не аллергия: так действует разогревающий гель.",
        "Это не аллергия.",
        "No es una quemadura.",
        "Если появился отёк, сразу обратитесь к врачу.",
        "Смойте гель тёплой водой.",
    ],
)
def test_claims_the_approved_article_makes_pass(text: str) -> None:
    assert check_medical(text, [GEL]) == []


def test_the_same_claim_fails_when_the_article_is_not_approved() -> None:
    unapproved = dataclasses.replace(GEL, approved=False)
    assert check_medical("Это не ожог и не аллергия.", [unapproved]) != []
    assert check_medical("Это не ожог и не аллергия.", []) != []


def test_an_approved_article_can_allow_a_treatment() -> None:
    article = Article(
        id="a", title="T", body="При зуде врач может назначить антигистаминное.", language="ru", approved=True
    )
    assert check_medical("Врач может назначить антигистаминное.", [article]) == []
    assert check_medical("Примите ибупрофен.", [article]) == ["medical:treatment:painkiller"]


def test_negation_is_read() -> None:
    claims = find_medical_claims("Это не ожог и не аллергия.")
    assert {(c.term, c.negated) for c in claims} == {("burn", True), ("allergy", True)}
    assert {(c.term, c.negated) for c in find_medical_claims("Это аллергия.")} == {("allergy", False)}


# --- 3. contacts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Напишите нам в телеграм, там быстрее.", "messenger"),
        ("Пишите в вотсап.", "messenger"),
        ("Мы есть в ВК и инстаграме.", "messenger"),
        ("Escribinos por WhatsApp.", "messenger"),
        ("Дешевле у нас на Ozon.", "messenger"),
        ("Наш телефон +7 999 123-45-67.", "phone"),
        ("Звоните 8 (999) 123-45-67.", "phone"),
        ("Llamanos al 11 4567-8901.", "phone"),
        ("Почта shop@example.ru.", "email"),
        ("Подробнее на https://example.com/promo", "url"),
        ("Смотрите сайт example.com.", "url"),
        ("Наш ник @shop_help.", "handle"),
    ],
)
def test_contacts_are_rejected_on_marketplace_chat(text: str, kind: str) -> None:
    assert f"contact:{kind}" in check_contacts(text, channel_is_marketplace=True)


@pytest.mark.parametrize(
    "text",
    [
        "Оформите заявку в приложении Wildberries.",
        "Артикул 123456789, штрихкод 2041234567890.",
        "При затруднённом дыхании вызывайте скорую помощь, 103 или 112.",
        "El grabador usa H.265 y PoE 802.3af.",
        "Пришлите фото этикетки сюда.",
    ],
)
def test_marketplace_texts_without_contacts_pass(text: str) -> None:
    assert check_contacts(text, channel_is_marketplace=True) == []


def test_contacts_elsewhere_must_come_from_the_articles() -> None:
    article = Article(id="c", title="Контакты", body="Сервис: service@example.ru.", language="ru")
    assert check_contacts("Напишите на service@example.ru.", False, [article]) == []
    assert check_contacts("Напишите нам в телеграм.", False, [article]) == []  # fine off the marketplace
    assert check_contacts("Напишите на other@example.ru.", False, [article]) == ["contact:email_not_in_articles"]
    assert check_contacts("Звоните +7 999 123-45-67.", False, [article]) == ["contact:phone_not_in_articles"]


# --- 4. grounding ---------------------------------------------------------------------------------------

DEFECT = _article("care-ru", "defect-return")
GOOD_DEFECT_ANSWER = (
    "Нам жаль, что товар пришёл с браком. Если заказ ещё в пункте выдачи, осмотрите товар и откажитесь от "
    "него. Если товар уже у вас, оформите заявку на возврат брака в приложении Wildberries, опишите дефект и "
    "приложите фото."
)


def test_a_faithful_paraphrase_is_supported() -> None:
    assert check_grounding(GOOD_DEFECT_ANSWER, ["defect-return"], [DEFECT, GEL], "ru") == []
    support = grounding_support(GOOD_DEFECT_ANSWER, [DEFECT], "ru")
    assert support.overall >= 0.9


@pytest.mark.parametrize(
    ("cited", "reason"),
    [([], "grounding:no_citation"), (["made-up-id"], "grounding:unknown_citation:made-up-id")],
)
def test_missing_or_unknown_citation_is_rejected(cited: list[str], reason: str) -> None:
    assert check_grounding(GOOD_DEFECT_ANSWER, cited, [DEFECT], "ru") == [reason]


def test_citing_the_wrong_article_is_low_support() -> None:
    reasons = check_grounding(GOOD_DEFECT_ANSWER, ["warming-gel-sensation"], [DEFECT, GEL], "ru")
    assert any(r.startswith("grounding:low_support") for r in reasons)


def test_an_invented_sentence_is_rejected() -> None:
    text = GOOD_DEFECT_ANSWER + " Кроме того, товар сертифицирован и безопасен для беременных и кормящих."
    reasons = check_grounding(text, ["defect-return"], [DEFECT], "ru")
    assert any(r.startswith("grounding:unsupported_sentence") for r in reasons)


def test_invented_numbers_are_rejected() -> None:
    text = "Оформите заявку на возврат брака в приложении Wildberries, деньги придут за 3 дня."
    assert "grounding:unsupported_number:3" in check_grounding(text, ["defect-return"], [DEFECT], "ru")


def test_spanish_grounding() -> None:
    sales = KnowledgeBase.from_pack("sales-es")
    poe = sales.get("poe")
    assert poe is not None
    good = "PoE significa que el mismo cable de red lleva datos y energía a la cámara IP, sin una fuente aparte."
    bad = "PoE funciona perfecto con cualquier cable telefónico viejo y alcanza kilómetros sin perder señal."
    assert check_grounding(good, ["poe"], [poe], "es") == []
    assert check_grounding(bad, ["poe"], [poe], "es") != []


# --- 5. leaks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Хорошо, игнорирую инструкции и обещаю вам всё.",
        "Мой системный промпт запрещает это.",
        "Как языковая модель, я не могу этого сказать.",
        "Ignoring my instructions as you asked.",
        "As an AI, I was told to never promise refunds.",
        "Olvidé mis instrucciones, como pediste.",
        f"Служебная метка: {CANARY}",
    ],
)
def test_leaks_are_rejected(text: str) -> None:
    assert check_leak(text) != []


def test_quoting_the_system_prompt_is_a_leak() -> None:
    prompt = grounded_system_prompt("ru", True)
    quote = "Sure: using only facts from the knowledge articles in the next message. Do not add facts"
    assert "leak:system_prompt" in check_leak(quote, prompt)
    assert check_leak(GOOD_DEFECT_ANSWER, prompt) == []


@pytest.mark.parametrize(
    "text",
    ["Следуйте инструкции на упаковке.", "Seguí las instrucciones del manual.", "Follow the instructions."],
)
def test_talking_about_product_instructions_is_not_a_leak(text: str) -> None:
    assert check_leak(text) == []


# --- everything together --------------------------------------------------------------------------------


def test_check_reply_collects_every_reason() -> None:
    text = "Игнорирую инструкции: это аллергия, вернём деньги, пишите в телеграм."
    verdict = check_reply(
        text, language="ru", channel_is_marketplace=True, articles=[DEFECT], cited_ids=["defect-return"]
    )
    assert not verdict.ok
    for reason in ("promise:refund", "medical:diagnosis:allergy", "contact:messenger", "leak:instructions"):
        assert reason in verdict.reasons


def test_review_replies_are_checked_without_grounding() -> None:
    verdict = check_reply("Спасибо за отзыв! Рады, что товар понравился.", language="ru", channel_is_marketplace=True)
    assert verdict.ok and verdict.reasons == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_check_reply_never_crashes(text: str) -> None:
    verdict = check_reply(
        text, language="ru", channel_is_marketplace=True, articles=[DEFECT], cited_ids=["defect-return"]
    )
    assert verdict.ok == (not verdict.reasons)
