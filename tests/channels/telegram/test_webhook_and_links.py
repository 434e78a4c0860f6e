"""Webhook secret and body checks, a webhook round trip, deep links, token checks."""

from __future__ import annotations

import json
import re

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.adapters.media import MediaStore
from otklik.channels.telegram.adapter import (
    SECRET_HEADER,
    InvalidToken,
    TelegramInbound,
    deep_link,
    generate_secret_token,
    mask_token,
    parse_webhook_body,
    validate_token,
    verify_secret,
)
from otklik.core.messages import InboundEvent
from otklik.testing.fake_telegram import FakeTelegramServer, serve_asgi

CHAT = 385102944


def test_verify_secret() -> None:
    secret = generate_secret_token()
    assert verify_secret(secret, secret) is True
    assert verify_secret(secret + "x", secret) is False
    assert verify_secret("", secret) is False
    assert verify_secret(None, secret) is False
    assert verify_secret("секрет", secret) is False  # non-ASCII header: False, not TypeError
    assert verify_secret("anything", "") is False  # no secret configured: refuse, unlike aiogram


def test_generated_secret_fits_telegram_rules() -> None:
    tokens = {generate_secret_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,256}", token) for token in tokens)


def test_parse_webhook_body_accepts_an_update() -> None:
    body = json.dumps({"update_id": 5, "message": {"text": "привет"}}, ensure_ascii=False).encode()
    assert parse_webhook_body(body)["message"]["text"] == "привет"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{update_id: 1}", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"update"', "JSON object"),
        (b"{}", "update_id"),
        (b'{"update_id": "12"}', "update_id"),
        (b'{"update_id": true}', "update_id"),
        (b'{"update_id": -1}', "update_id"),
    ],
)
def test_parse_webhook_body_rejects_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_webhook_body(body)


async def test_webhook_round_trip_with_secret(bot: Bot, fake: FakeTelegramServer, media: MediaStore) -> None:
    """The route the web app will have: check the secret, parse, hand over, answer 200."""
    events: list[InboundEvent] = []

    async def on_event(event: InboundEvent) -> object:
        events.append(event)
        return None

    secret = generate_secret_token()
    inbound = TelegramInbound(channel_account_id=1, bot=bot, on_event=on_event, media=media)

    async def hook(request: Request) -> Response:
        if not verify_secret(request.headers.get(SECRET_HEADER), secret):
            return Response("Unauthorized", status_code=401)
        try:
            update = parse_webhook_body(await request.body())
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        await inbound.handle_update(update)
        return JSONResponse({})

    assert await bot.set_webhook("https://shop.example.com/tg/hook", secret_token=secret, allowed_updates=["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates) == ("https://shop.example.com/tg/hook", ["message"])
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()  # polling and webhook are exclusive

    async with serve_asgi(Starlette(routes=[Route("/tg/hook", hook, methods=["POST"])])) as base:
        good = await fake.deliver_webhook(fake.text_update(CHAT, "привет"), url=f"{base}/tg/hook")
        forged = await fake.deliver_webhook(fake.text_update(CHAT, "взлом"), url=f"{base}/tg/hook", secret="wrong")
    assert (good, forged) == (200, 401)
    assert [e.text for e in events] == ["привет"]
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 401"


async def test_fake_refuses_a_plain_http_webhook(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="HTTPS"):
        await bot.set_webhook("http://shop.example.com/hook")
    with pytest.raises(TelegramBadRequest, match="secret token"):
        await bot.set_webhook("https://shop.example.com/hook", secret_token="has spaces")


@pytest.mark.parametrize("payload", ["card_A1", "a", "A" * 64, "sku-123_promo"])
def test_deep_link(payload: str) -> None:
    assert deep_link("@OtklikShopBot", payload) == f"https://t.me/OtklikShopBot?start={payload}"


@pytest.mark.parametrize("payload", ["", "A" * 65, "карта", "card 1", "a+b", "a/b", "a=b"])
def test_deep_link_rejects_bad_payloads(payload: str) -> None:
    with pytest.raises(ValueError, match="A-Z, a-z, 0-9, _ and -"):
        deep_link("OtklikShopBot", payload)


@pytest.mark.parametrize("username", ["", "ab", "bad name", "1starts_with_digit", "x" * 33])
def test_deep_link_rejects_bad_usernames(username: str) -> None:
    with pytest.raises(ValueError, match="username"):
        deep_link(username, "card_1")


async def test_validate_token(fake: FakeTelegramServer) -> None:
    info = await validate_token(fake.base_url, fake.default_token)
    assert (info.id, info.username, info.first_name) == (123456, "otklik_test_bot", "Otklik Test")
    with pytest.raises(InvalidToken, match="rejected"):
        await validate_token(fake.base_url, "654321:unknown-token")
    with pytest.raises(InvalidToken, match="malformed"):
        await validate_token(fake.base_url, "not a token")


def test_mask_token() -> None:
    assert mask_token("123456:ABCdefGHIjklMNOpqrSTUvwxYZ") == "123456:AB…YZ"
    assert mask_token("123456:short") == "123456:…"
    assert "ABCdefGHI" not in mask_token("123456:ABCdefGHIjklMNOpqrSTUvwxYZ")
    assert mask_token("pasted-the-wrong-secret") == "…"
