"""Cashback fixtures: the real app (SQLite and PostgreSQL) with the fake WB server holding the seller's
reviews, a running campaign, and a web-chat buyer that waits for the bot's replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from otklik.bootstrap import Otklik
from otklik.capabilities.cashback import ocr
from otklik.capabilities.cashback.campaigns import CampaignInput, create_campaign
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.clock import utcnow
from otklik.testing.fake_wb import FakeFeedback, FakeWB
from otklik.web.app import create_app
from tests.conftest import make_settings

GEL = 123456789
OIL = 234567890
REVIEW_TEXT = "Отличный гель, греет мягко, запах приятный. Пользуемся неделю, всё понравилось."
OTHER_TEXT = "Флакон подтекает, крышка плохо закрывается, но сам гель хороший и греет."

needs_ocr = pytest.mark.skipif(
    not ocr.available(),
    reason="Tesseract with Russian data is not installed (apt install tesseract-ocr tesseract-ocr-rus); CI has it",
)


def review_day() -> datetime:
    return utcnow() - timedelta(hours=2)


def ru_date(moment: datetime) -> str:
    months = [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ]
    return f"{moment.day} {months[moment.month - 1]} {moment.year}"


def seller_reviews() -> list[FakeFeedback]:
    day = review_day()
    return [
        FakeFeedback(
            id="fb-anna",
            nm_id=GEL,
            text=REVIEW_TEXT,
            product_valuation=5,
            created_date=day,
            user_name="Анна",
            product_name="Гель-смазка разогревающая 50 мл",
        ),
        FakeFeedback(
            id="fb-olga",
            nm_id=GEL,
            text=OTHER_TEXT,
            product_valuation=3,
            created_date=day,
            user_name="Ольга",
            product_name="Гель-смазка разогревающая 50 мл",
        ),
        FakeFeedback(
            id="fb-oil",
            nm_id=OIL,
            text="Масло хорошее, впитывается быстро, запах лёгкий, без химии.",
            product_valuation=4,
            created_date=day,
            user_name="Игорь",
        ),
    ]


def campaign_input(**overrides: Any) -> CampaignInput:
    values: dict[str, Any] = {
        "name": "Весна 2025",
        "reward_kopecks": 15000,
        "starts_at": utcnow() - timedelta(days=3),
        "ends_at": utcnow() + timedelta(days=30),
        "status": "active",
        "products": [{"nm_id": GEL, "name": "Гель-смазка 50 мл"}, {"nm_id": OIL, "name": "Масло массажное"}],
    }
    values.update(overrides)
    return CampaignInput(**values)


async def add_campaign(app: Otklik, **overrides: Any) -> int:
    async with app.db.write() as session:
        return await create_campaign(session, campaign_input(**overrides), actor="user:test", now=utcnow())


@dataclass
class Shop:
    app: Otklik
    http: httpx.AsyncClient
    wb: FakeWB
    campaign_id: int


@pytest.fixture
async def fake_wb() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        server.add_feedbacks(seller_reviews())
        yield server


@pytest.fixture
async def shop(tmp_path: Path, db_url: str, fake_wb: FakeWB) -> AsyncIterator[Shop]:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url))
    await app.start()
    await add_wb_account(app.db, app.vault, fake_wb.token)
    await app.reload()
    campaign_id = await add_campaign(app)
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield Shop(app, http, fake_wb, campaign_id)
    finally:
        await app.close()


class Buyer:
    """One web-chat buyer: send text, buttons, files; wait for the bot's replies."""

    def __init__(self, http: httpx.AsyncClient, sid: str) -> None:
        self.http, self.sid, self.cursor = http, sid, 0
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, http: httpx.AsyncClient, start: str | None = None) -> Buyer:
        response = await http.post("/api/webchat/sessions", json={"start": start} if start else {})
        assert response.status_code == 201, response.text
        return cls(http, str(response.json()["session_id"]))

    async def send(self, **body: Any) -> None:
        response = await self.http.post(f"/api/webchat/sessions/{self.sid}/messages", json=body)
        assert response.status_code == 202, response.text

    async def upload(self, data: bytes, name: str = "review.png", content_type: str = "image/png") -> httpx.Response:
        return await self.http.post(
            f"/api/webchat/sessions/{self.sid}/messages", files={"file": (name, data, content_type)}
        )

    async def until(self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0) -> list[dict[str, Any]]:
        """Replies after the previous wait, once `check(replies)` holds."""
        got: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.http.get(
                f"/api/webchat/sessions/{self.sid}/messages", params={"after": self.cursor, "wait": 1}
            )
            assert response.status_code == 200
            body = response.json()
            got += [m for m in body["messages"] if m["author"] != "buyer"]
            self.cursor = body["cursor"]
            if got and check(got):
                self.seen += got
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching reply; got {[m['text'] for m in got]}")

    async def reply_with(self, fragment: str, timeout: float = 20.0) -> dict[str, Any]:
        replies = await self.until(lambda ms: any(fragment in m["text"] for m in ms), timeout)
        return next(m for m in replies if fragment in m["text"])


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {b["title"]: b["payload"] for b in message.get("buttons", [])}


def now_utc() -> datetime:
    return datetime.now(UTC)
