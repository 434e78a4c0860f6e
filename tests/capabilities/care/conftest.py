"""Fixtures for the care tests: the real app on SQLite/PostgreSQL, the web chat API, a fake WB server with
the seller's cards synced into the cache, and label images rendered by zxing-cpp."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.bootstrap import Otklik
from otklik.capabilities.care.catalog import sync_cards
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.testing.fake_wb import FakeCard, FakeSize, FakeWB, ean13
from otklik.web.app import create_app
from tests.conftest import make_settings

OUR_NM = 123456789
OUR_M = ean13("460123456780")  # size M of the warming gel card
OUR_L = ean13("460123456781")  # size L
FOREIGN = ean13("482000000001")  # a valid EAN-13 that is not on any of the seller's cards


def seller_cards() -> list[FakeCard]:
    return [
        FakeCard(
            nm_id=OUR_NM,
            vendor_code="GEL-WARM-50",
            title="Гель-смазка разогревающая 50 мл",
            brand="Демо",
            sizes=[FakeSize(chrt_id=1, tech_size="M", skus=[OUR_M]), FakeSize(chrt_id=2, tech_size="L", skus=[OUR_L])],
        ),
        FakeCard(
            nm_id=234567890,
            vendor_code="OIL-01",
            title="Масло массажное",
            sizes=[FakeSize(3, "0", skus=[ean13("460999000001")])],
        ),
    ]


def label_png(*codes: str, scale: int = 3, noise: bool = False) -> bytes:
    """A product label with one or more EAN-13 barcodes (rendered by zxing-cpp), as a PNG."""
    images = [
        Image.fromarray(
            np.array(
                zxingcpp.create_barcode(c[:12], zxingcpp.BarcodeFormat.EAN13).to_image(
                    scale=scale, add_quiet_zones=True
                )
            )
        )
        for c in codes
    ]
    width = max(i.width for i in images) + 80
    height = sum(i.height + 40 for i in images) + 60
    label = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(label)
    draw.text((20, 10), "ООО Демо  Гель 50 мл", fill=0)
    y = 40
    for image in images:
        label.paste(image, (40, y))
        y += image.height + 40
    buffer = io.BytesIO()
    label.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def plain_png(size: tuple[int, int] = (120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 180, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Care:
    app: Otklik
    http: httpx.AsyncClient
    wb: FakeWB
    account_id: int


@pytest.fixture
async def fake_wb() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        server.add_cards(seller_cards())
        yield server


@pytest.fixture
async def care(tmp_path: Path, db_url: str, fake_wb: FakeWB) -> AsyncIterator[Care]:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url))
    await app.start()
    account_id, _ = await add_wb_account(app.db, app.vault, fake_wb.token)
    await app.reload()
    (account,) = await wb_accounts(app.db, app.vault)
    async with client_for(account, app.settings, limiters=app.ctx.wb_limiters) as client:
        await sync_cards(app.db, client, account.id)
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield Care(app, http, fake_wb, account_id)
    finally:
        await app.close()


class Chat:
    """One buyer in the web chat: send text, buttons and files; read the bot's replies."""

    def __init__(self, http: httpx.AsyncClient, sid: str) -> None:
        self.http, self.sid, self.cursor = http, sid, 0

    @classmethod
    async def open(cls, http: httpx.AsyncClient) -> Chat:
        response = await http.post("/api/webchat/sessions", json={})
        assert response.status_code == 201, response.text
        chat = cls(http, str(response.json()["session_id"]))
        await chat.replies(2)  # greeting + menu
        return chat

    async def send(self, **body: Any) -> httpx.Response:
        response = await self.http.post(f"/api/webchat/sessions/{self.sid}/messages", json=body)
        assert response.status_code == 202, response.text
        return response

    async def upload(self, data: bytes, name: str = "label.png", content_type: str = "image/png") -> httpx.Response:
        return await self.http.post(
            f"/api/webchat/sessions/{self.sid}/messages", files={"file": (name, data, content_type)}
        )

    async def replies(self, expect: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        for _ in range(40):
            response = await self.http.get(
                f"/api/webchat/sessions/{self.sid}/messages", params={"after": self.cursor, "wait": 1}
            )
            assert response.status_code == 200
            body = response.json()
            got += body["messages"]
            self.cursor = body["cursor"]
            if len(got) >= expect:
                assert len(got) == expect, [m["text"] for m in got]
                return got
        raise AssertionError(f"expected {expect} replies, got {[m['text'] for m in got]}")

    async def texts(self, expect: int) -> list[str]:
        return [m["text"] for m in await self.replies(expect)]
