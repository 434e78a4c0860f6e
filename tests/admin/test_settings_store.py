"""Settings applied to the runtime without I/O: pack overrides, the language policy, the after-hours hook."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from otklik.conversations.context import AccountInfo
from otklik.conversations.packs import load_pack
from otklik.conversations.settings_store import (
    LanguageEngine,
    LanguagePolicy,
    LiveSettings,
    Snapshot,
    check_languages,
    check_texts,
    default_text,
    pack_languages,
)
from otklik.core.conversation import ContactView, ConversationState
from otklik.core.errors import InvalidInput
from otklik.core.messages import EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.understanding import KeywordClassifier
from otklik.platform.business_hours import parse_schedule

CONFIG = PackConfig(id="shop", language="ru", default_flow="x", texts={"handoff": "Зову менеджера."})
CLOSED_WEEK = {"timezone": "Europe/Moscow", "enabled": True, "week": {}, "holidays": []}


def live(snapshot: Snapshot, engines: dict[str, Any] | None = None) -> LiveSettings:
    ctx = SimpleNamespace(accounts={7: AccountInfo(7, "webchat", "webchat", "shop")}, engines=engines or {})
    settings = LiveSettings(store=None, ctx=ctx)  # type: ignore[arg-type]  # no database: the hook must not need one
    settings.snapshot = snapshot
    return settings


def test_text_overrides_and_the_default_language_reach_the_pack_config() -> None:
    snapshot = Snapshot(
        languages={"shop": LanguagePolicy("ru", ("ru",))},
        texts={"shop": {"handoff": {"ru": "Сейчас позову человека."}, "with_operator": {"ru": "Ждём оператора."}}},
    )
    applied = live(snapshot).pack_config(CONFIG)
    assert applied.text("handoff") == {"ru": "Сейчас позову человека."}
    assert applied.text("with_operator") == {"ru": "Ждём оператора."}
    assert live(Snapshot()).pack_config(CONFIG) is CONFIG  # nothing set: the pack as shipped


def test_a_buyer_in_a_language_not_allowed_is_answered_in_the_default() -> None:
    config = replace(CONFIG, texts={"handoff": {"ru": "Зову менеджера.", "en": "Calling a manager."}})
    engine = LanguageEngine(config, {}, KeywordClassifier({}), ("ru",))
    event = InboundEvent(channel_account_id=1, external_id="e1", sender_id="s", kind=EventKind.TEXT, text="/operator")
    result = engine.handle(ConversationState(), event, ContactView(language="en"), datetime(2026, 1, 1, tzinfo=UTC))
    texts = [e.message.text for e in result.effects if hasattr(e, "message")]
    assert texts == ["Зову менеджера."]


def test_the_hook_needs_no_database_and_is_fast() -> None:
    engines = {"shop": SimpleNamespace(pack=CONFIG)}
    hook = live(Snapshot(hours=parse_schedule({**CLOSED_WEEK, "week": {"mon": "09:00-18:00"}})), engines)
    now = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # Friday 19:00 in Moscow
    assert hook.after_hours_text(7, now) == (
        "Операторы отвечают пн с 9:00 до 18:00 по Москве; ответим в понедельник в 9:00."
    )
    started = time.perf_counter()
    for _ in range(1000):
        hook.after_hours_text(7, now)
    assert time.perf_counter() - started < 1.0
    assert hook.after_hours_text(99, now)  # an unknown account still gets a (Russian) text
    assert live(Snapshot()).after_hours_text(7, now) is None  # hours off


def test_the_after_hours_template_of_the_pack_is_used() -> None:
    engines = {"shop": SimpleNamespace(pack=CONFIG)}
    snapshot = Snapshot(
        hours=parse_schedule(CLOSED_WEEK), texts={"shop": {"after_hours": {"ru": "Вернёмся: {{ next }}"}}}
    )
    now = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    assert (
        live(snapshot, engines).after_hours_text(7, now) == "Сейчас операторы не на связи; ответим, как только сможем."
    )
    snapshot = replace(snapshot, hours=parse_schedule({**CLOSED_WEEK, "week": {"mon": "09:00-18:00"}}))
    assert live(snapshot, engines).after_hours_text(7, now) == "Вернёмся: в понедельник в 9:00"


def test_pack_languages_come_from_the_pack() -> None:
    care = load_pack("care-ru")
    assert pack_languages(care) == ("ru",)
    assert pack_languages(load_pack("sales-es"))[0] == "es"
    with pytest.raises(InvalidInput, match="has no texts in en"):
        check_languages(care, "en", ["en"])
    assert check_languages(care, "ru", []) == LanguagePolicy("ru", ("ru",))
    assert default_text(care.config, "handoff", "ru").startswith("Передаю ваш вопрос менеджеру")
    assert default_text(care.config, "with_operator", "ru") == "Ваше сообщение получено, оператор скоро ответит."


def test_texts_are_trimmed_and_empty_ones_dropped() -> None:
    care = load_pack("care-ru")
    clean = check_texts(
        care, {"handoff": {"ru": "  Привет, {{ contact.first_name }}!\r\n "}, "with_operator": {"ru": ""}}, ["ru"]
    )
    assert clean == {"handoff": {"ru": "Привет, {{ contact.first_name }}!"}}


async def test_an_api_webhook_is_tested_with_a_signed_ping() -> None:
    import httpx

    from otklik.channels.api.adapter import verify
    from otklik.channels.api.admin import ping_webhook

    received: list[httpx.Request] = []

    def answer(status: int) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            received.append(request)
            return httpx.Response(status)

        return httpx.MockTransport(handle)

    ok = await ping_webhook("https://shop.example/otklik", "fake-signing-secret", transport=answer(200))
    assert ok.ok and ok.message == "shop.example answered 200"
    assert verify("fake-signing-secret", received[0].content, received[0].headers["x-otklik-signature"])
    assert b'"ping"' in received[0].content
    refused = await ping_webhook("https://shop.example/otklik", "fake-signing-secret", transport=answer(500))
    assert not refused.ok and "500" in refused.message
    assert not (await ping_webhook("", "fake-signing-secret")).ok
    assert (await ping_webhook("https://shop.example/otklik", "")).message == "no signing secret stored"
