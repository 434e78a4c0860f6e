"""The marketplace guard in the operator inbox: on a marketplace conversation a reply that breaks the rules is
refused with the reasons highlighted and a suggested rewording, nothing is written or sent, and the seller
finds the refusal in the audit log. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import EventLog, Message, OutboxRow
from otklik.bootstrap import Otklik
from otklik.core.guard import REASONS, check
from otklik.platform.users import Role
from otklik.platform.webkit.i18n import LANGUAGES, load_catalog
from tests.capabilities.inbox.inbox_helpers import count, drain, remote_channel, waiting
from tests.fixtures.admin import Admin

JSON = {"accept": "application/json"}
BAD = "Напишите нам в вотсап: +7 916 555-12-34"


async def act(admin: Admin, url: str, data: dict[str, str]) -> httpx.Response:
    return await admin.http.post(url, data=data, headers={"X-CSRF-Token": admin.csrf, **JSON})


async def marketplace_conversation(app: Otklik, buyer: str = "wb-1") -> tuple[int, list[str]]:
    account, sender = await remote_channel(app)
    app.ctx.marketplace_kinds = frozenset({"webhook"})  # as `ChannelKind(marketplace=True)` declares it
    cid = await waiting(app, buyer, account=account)
    await drain(app)
    return cid, sender.texts()  # type: ignore[return-value]


async def test_a_reply_that_breaks_the_rules_is_refused_and_audited(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid, _ = await marketplace_conversation(otklik)
    operators_before = await count(otklik, Message, Message.author == "operator")
    outbox_before = await count(otklik, OutboxRow)
    operator = await as_role(Role.OPERATOR)
    response = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": BAD, "client_id": "guard-1-xyz"})
    assert response.status_code == 422
    body = response.json()
    assert "marketplace" in body["detail"]
    assert set(body["guard"]["reasons"]) == {"messenger", "phone"}
    spans = {s["reason"]: BAD[s["start"] : s["end"]] for s in body["guard"]["spans"]}
    assert spans == {"messenger": "вотсап", "phone": "+7 916 555-12-34"}
    assert check(body["guard"]["suggestion"]).allowed
    assert await count(otklik, Message, Message.author == "operator") == operators_before
    assert await count(otklik, OutboxRow) == outbox_before
    async with otklik.db.read() as session:
        entry = (await session.execute(select(EventLog).where(EventLog.kind == "guard.refused"))).scalar_one()
    assert entry.actor == "user:operator" and entry.subject_id == str(cid)
    assert entry.data["reasons"] == ["messenger", "phone"]
    assert "555-12-34" not in str(entry.data)  # kept masked: no personal data in the audit log
    audit_page = await (await as_role(Role.OWNER)).http.get("/admin/audit", params={"kind": "guard."})
    assert audit_page.status_code == 200 and 'data-kind="guard.refused"' in audit_page.text


async def test_the_form_shows_the_text_highlighted_and_the_rewording(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid, _ = await marketplace_conversation(otklik)
    operator = await as_role(Role.OPERATOR)
    hostile = "<script>x</script> пишите в телегу @shop"
    page = await operator.post(f"/admin/inbox/c/{cid}/reply", {"text": hostile})
    assert page.status_code == 422
    assert 'data-testid="guard"' in page.text and 'data-testid="guard" hidden' not in page.text
    assert '<mark data-reason="messenger"' in page.text and ">телегу</mark>" in page.text
    assert '<mark data-reason="handle"' in page.text and ">@shop</mark>" in page.text
    assert "<script>x</script>" not in page.text and "&lt;script&gt;x&lt;/script&gt;" in page.text  # escaped
    assert 'data-testid="guard-suggestion">' in page.text
    assert "пишите в телегу @shop" in page.text  # the operator's text is kept in the box


async def test_an_allowed_reply_goes_and_other_channels_are_not_checked(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid, _ = await marketplace_conversation(otklik)
    operator = await as_role(Role.OPERATOR)
    fine = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "Проверим заказ и ответим здесь сегодня."})
    assert fine.status_code == 200
    local = await waiting(otklik, "web-1")  # the web chat is no marketplace
    elsewhere = await act(operator, f"/admin/inbox/c/{local}/reply", {"text": BAD})
    assert elsewhere.status_code == 200
    assert await count(otklik, EventLog, EventLog.kind.like("guard.%")) == 0


async def test_hostile_replies_are_refused_cleanly(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid, _ = await marketplace_conversation(otklik)
    operator = await as_role(Role.OPERATOR)
    longest = ("Ответим в телеге. " * 1000)[: otklik.settings.max_text_chars].strip()  # the longest a reply may be
    for text in ("Да", "т\u200bе\u200bл\u200bе\u200bг\u200bа, пишите", "8 9\x0b16 555\x1f12 34 звоните", longest):
        response = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": text})
        assert response.status_code == 422, text
        assert response.json()["guard"]["reasons"]
    assert await count(otklik, Message, Message.author == "operator") == 0
    assert await count(otklik, EventLog, EventLog.kind == "guard.refused") == 4


def test_every_reason_has_its_words_in_every_language() -> None:
    from tests.fixtures.admin import locale_folders

    catalog = load_catalog(locale_folders())
    for reason in REASONS:
        texts = catalog[f"inbox.guard.reason.{reason}"]
        assert all(texts.get(lang) for lang in LANGUAGES), reason
    for key in ("inbox.guard.suggestion", "inbox.guard.use", "audit.kind.guard.blocked", "audit.kind.guard.refused"):
        assert all(catalog[key].get(lang) for lang in LANGUAGES), key
