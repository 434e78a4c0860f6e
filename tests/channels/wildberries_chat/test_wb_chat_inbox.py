"""What Wildberries itself writes in a buyer chat reaches the inbox (labelled, escaped) and is never
answered by the bot; the buyer's next message is answered as usual."""

from __future__ import annotations

from sqlalchemy import func, select

from otklik.adapters.db.models import Message
from otklik.bootstrap import Otklik
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.channels.wildberries.parse import parse_event
from otklik.platform.users import Role
from otklik.testing.fake_wb import make_token


def wb_event(event_id: str, text: str, sender: str = "client") -> dict[str, object]:
    return {
        "chatID": "1:chat-a",
        "eventID": event_id,
        "eventType": "message",
        "isNewChat": event_id == "e1",
        "message": {"text": text},
        "source": "seller-portal" if sender != "client" else "android",
        "addTimestamp": 1_766_000_000_000,
        "addTime": "2026-12-05T12:00:00Z",
        "sender": sender,
        "clientName": "Ира",
        "replySign": "1:chat-a:sign",
    }


async def bot_messages(app: Otklik) -> int:
    async with app.db.read() as session:
        query = select(func.count()).select_from(Message).where(Message.author == "bot")
        return int((await session.execute(query)).scalar_one())


async def test_a_wb_notice_is_shown_in_the_inbox_and_not_answered(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    account, _ = await add_wb_account(otklik.db, otklik.vault, make_token(), name="shop", pack="care-ru")
    await otklik.reload()
    first = parse_event(account, wb_event("e1", "Где мой заказ? Не пришёл"))
    assert first.event is not None
    result = await otklik.ingest(first.event)
    answered = await bot_messages(otklik)
    assert answered >= 1
    notice = parse_event(account, wb_event("e2", "<b>Wildberries</b>: заказ в пути", sender="wb"))
    assert notice.event is not None
    again = await otklik.ingest(notice.event)
    assert again.replies == 0 and await bot_messages(otklik) == answered
    duplicate = await otklik.ingest(notice.event)
    assert duplicate.duplicate
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get(f"/admin/inbox/c/{result.conversation_id}")
    assert page.status_code == 200
    assert "by-marketplace" in page.text and "&lt;b&gt;Wildberries&lt;/b&gt;: заказ в пути" in page.text
    assert "<b>Wildberries</b>" not in page.text
