"""`/admin/outreach` on SQLite and PostgreSQL: roles (operator refused, anonymous sent to the login), CSRF,
escaped output; the segment form (bad JSON, hostile trees, oversized input: 422, nothing stored) and its
preview (the count is the audience's); the broadcast form (unknown segment or account, a past date, no text:
422, nothing stored), its page with the progress, and the control buttons (pausing twice: 409, unchanged)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, update

from otklik.adapters.db.models import ChannelAccount, Contact, Message
from otklik.bootstrap import Otklik
from otklik.capabilities.outreach import service
from otklik.capabilities.outreach.models import broadcasts, deliveries, segments
from otklik.capabilities.outreach.segments import audience_query
from otklik.clock import utcnow
from otklik.platform.channel_accounts import add_account
from otklik.platform.users import Role
from tests.capabilities.outreach.seed import message, seed_contacts, tag

KEY = re.compile(r"\boutreach\.(?!md\b)[a-z_]+")  # a string key shown as is: its translation is missing
VIP = json.dumps({"all": [{"tag": "vip"}, {"language": "ru"}]})


@pytest.fixture
async def shop(otklik: Otklik) -> list[int]:
    """Six contacts on a Telegram account: chats 0-2 tagged vip, chat 2 opted out, chat 5 is named `<script>`."""
    account = await add_account(otklik.db, otklik.vault, kind="telegram", name="shop_bot", pack="care-ru",
                                secret="1:x", config={})  # fmt: skip
    chats = await seed_contacts(
        otklik.db, account, 6, start_chat=0, subscribed=lambda i: i != 2,
        display_name=lambda i: "<script>alert(1)</script>" if i == 1 else f"buyer {i}",
    )  # fmt: skip
    for chat in chats[:3]:
        await tag(otklik.db, chat, "vip")
    return chats


async def _count(otklik: Otklik, table: object) -> int:
    async with otklik.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def _set_messages(otklik: Otklik, broadcast_id: int, *, status: str, error: str | None = None,
                        only_unsent: bool = False) -> None:  # fmt: skip
    """What the outbox dispatcher would do: the kernel messages of the broadcast's deliveries change status."""
    async with otklik.db.write() as session:
        ids = select(deliveries.c.message_id).where(deliveries.c.broadcast_id == broadcast_id)
        query = update(Message).where(Message.id.in_(ids))
        if only_unsent:
            query = query.where(Message.status != "sent")
        await session.execute(query.values(status=status, error=error))


async def test_roles_csrf_and_escaping(otklik: Otklik, shop: list[int], as_role, anon) -> None:  # type: ignore[no-untyped-def]
    for url in ("/admin/outreach/segments", "/admin/outreach/broadcasts", "/admin/outreach/broadcasts/1"):
        assert (await anon.get(url, follow_redirects=False)).status_code in (303, 401)
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/outreach/broadcasts")).status_code == 403
    refused = await operator.post("/admin/outreach/segments", {"name": "vip", "conditions": VIP, "action": "save"})
    assert refused.status_code == 403 and await _count(otklik, segments) == 0
    assert "/admin/outreach" not in (await operator.http.get("/admin")).text  # no menu entry either

    admin = await as_role(Role.ADMIN)
    assert "/admin/outreach/broadcasts" in (await admin.http.get("/admin")).text
    no_csrf = await admin.http.post("/admin/outreach/segments", data={"name": "vip", "conditions": VIP})
    assert no_csrf.status_code == 403 and await _count(otklik, segments) == 0
    # a name the service refuses comes back in the form, escaped; the preview's sample escapes contact names
    hostile = await admin.post("/admin/outreach/segments",
                               {"name": "<script>x</script>", "conditions": VIP, "action": "save"})  # fmt: skip
    assert hostile.status_code == 422 and "segment name" in hostile.text
    assert "&lt;script&gt;x&lt;/script&gt;" in hostile.text and "<script>x" not in hostile.text
    preview = await admin.post("/admin/outreach/segments", {"name": "vip", "conditions": VIP, "action": "preview"})
    assert preview.status_code == 200 and "&lt;script&gt;alert(1)" in preview.text
    assert "<script>alert(1)" not in preview.text and await _count(otklik, segments) == 0
    strings = yaml.safe_load((Path(service.__file__).parent / "locales" / "outreach.yaml").read_text("utf-8"))
    assert strings and all(set(v) == {"ru", "en", "es"} and all(v.values()) for v in strings.values())
    assert not KEY.search(preview.text) and not KEY.search((await admin.http.get("/admin/outreach/broadcasts")).text)
    owner = await as_role(Role.OWNER)
    made = await owner.post("/admin/outreach/broadcasts", {"name": "promo", "text": "<b>sale</b> & more"})
    assert made.status_code == 303, made.text
    page = await owner.http.get(made.headers["location"])
    assert "&lt;b&gt;sale&lt;/b&gt; &amp; more" in page.text and "<b>sale" not in page.text
    assert not KEY.search(page.text)


async def test_segment_form_refusals_and_preview(otklik: Otklik, shop: list[int], as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    deep: object = {"tag": "vip"}
    for _ in range(10):
        deep = {"not": deep}
    for conditions, words in (
        ("{not json", "not valid JSON"),
        ("[" * 50_000, "at most 20000"),  # oversized: refused, not cut
        ("[" * 5_000 + "]" * 5_000, "not valid JSON"),  # deeper than the JSON parser goes
        ("[]", "exactly one key"),
        ('{"tag": "vip", "language": "ru"}', "exactly one key"),
        ('{"drop table": 1}', "conditions"),
        ('{"tag": 5}', "tag"),
        (json.dumps(deep), "nest at most"),
        (json.dumps({"any": [{"tag": f"t{i}"} for i in range(150)]}), "at most 100 conditions"),
        (json.dumps({"first_seen": {"within_days": 10**9}}), "first_seen"),
    ):
        for action in ("preview", "save"):
            response = await admin.post("/admin/outreach/segments",
                                        {"name": "vip", "conditions": conditions, "action": action})  # fmt: skip
            assert response.status_code == 422 and words in response.text, (conditions[:60], response.text[-500:])
            assert 'data-testid="preview"' not in response.text
    assert await _count(otklik, segments) == 0

    preview = await admin.post("/admin/outreach/segments", {"name": "vip", "conditions": VIP, "action": "preview"})
    assert preview.status_code == 200 and await _count(otklik, segments) == 0
    async with otklik.db.read() as session:
        audience = (await session.execute(audience_query(json.loads(VIP), utcnow()))).all()
        expected = {int(c) for c in (await session.execute(select(Contact.id).where(Contact.display_name.in_(
            ["buyer 0", "<script>alert(1)</script>"])))).scalars()}  # fmt: skip
    assert {int(a.contact_id) for a in audience} == expected  # chats 0 and 1: the opted-out chat 2 is not in it
    assert f'data-testid="count">{len(expected)}<' in preview.text
    assert all(f'data-contact="{c}"' in preview.text for c in expected)
    assert preview.text.count("data-contact=") == len(expected)
    everyone = await admin.post("/admin/outreach/segments",
                                {"name": "all", "conditions": '{"subscribed": true}', "action": "preview"})  # fmt: skip
    assert 'data-testid="count">5<' in everyone.text

    saved = await admin.post("/admin/outreach/segments", {"name": "vip", "conditions": VIP, "action": "save"})
    assert saved.status_code == 303
    listing = await admin.http.get("/admin/outreach/segments")
    assert listing.status_code == 200 and listing.text.count("data-segment=") == 1 and "vip" in listing.text


async def test_broadcast_form_page_and_controls(otklik: Otklik, shop: list[int], as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    assert (await admin.post("/admin/outreach/segments", {"name": "vip", "conditions": VIP})).status_code == 303
    async with otklik.db.read() as session:
        segment_id = int(await session.scalar(select(segments.c.id)) or 0)
    base = {"name": "Winter sale", "segment_id": str(segment_id), "text": "Скидки!"}
    past = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for fields, words in (
        ({"segment_id": "999999"}, "no such segment"),
        ({"segment_id": "99999999999999999999"}, "segment: choose"),
        ({"segment_id": "1 OR 1=1"}, "segment: choose"),
        ({"account_id": "424242"}, "no such channel account"),
        ({"at": past}, "in the past"),
        ({"at": "2026-02-31T10:00"}, "not an ISO time"),
        ({"text": ""}, "needs a text or a template"),
        ({"text": "x" * 5000}, "at most"),
        ({"name": "<script>"}, "broadcast name"),
        ({"buttons": "\n".join(f"b{i}" for i in range(11))}, "buttons: up to 10"),
        ({"buttons": "ok | " + "p" * 70}, "payload"),
    ):
        response = await admin.post("/admin/outreach/broadcasts", {**base, **fields})
        assert response.status_code == 422 and words in response.text, (fields, response.text[-500:])
    assert await _count(otklik, broadcasts) == 0

    async with otklik.db.read() as session:
        account = int(await session.scalar(select(ChannelAccount.id).where(ChannelAccount.name == "shop_bot")) or 0)
    zone = otklik.live.snapshot.hours.zone  # the seller's: the form's date-time is in it
    moment = (utcnow() + timedelta(days=2)).astimezone(zone).replace(second=0, microsecond=0)
    later = moment.strftime("%Y-%m-%dT%H:%M")
    scheduled = await admin.post("/admin/outreach/broadcasts", {**base, "name": "Later", "at": later,
                                                               "template": "winter_sale", "template_language": "es", "account_id": str(account)})  # fmt: skip
    assert scheduled.status_code == 303, scheduled.text
    made = await admin.post("/admin/outreach/broadcasts", {**base, "buttons": "Да | yes\nНет"})
    assert made.status_code == 303, made.text
    url = made.headers["location"]
    broadcast_id = int(url.rsplit("/", 1)[1])
    async with otklik.db.read() as session:
        row = await service.get(session, broadcast_id)
        later_row = (await session.execute(select(broadcasts).where(broadcasts.c.name == "Later"))).one()
    assert row.status == "draft" and row.segment_id == segment_id
    assert row.message["buttons"] == [{"title": "Да", "payload": "yes"}, {"title": "Нет", "payload": "Нет"}]
    assert later_row.scheduled_at == moment and later_row.status == "draft"
    assert later_row.channel_account_id == account and row.channel_account_id is None
    assert later_row.message["template"] == {"name": "winter_sale", "language": "es", "params": []}
    listing = await admin.http.get("/admin/outreach/broadcasts")
    assert f'data-broadcast="{broadcast_id}"' in listing.text and "Winter sale" in listing.text

    page = await admin.http.get(url)
    assert 'data-testid="do-start"' in page.text and 'data-testid="do-pause"' not in page.text
    early = await admin.post(f"{url}/control", {"action": "pause"})
    assert early.status_code == 409 and "cannot pause" in early.text
    bad = await admin.post(f"{url}/control", {"action": "<drop>"})
    assert bad.status_code == 409 and "action: start" in bad.text and "<drop>" not in bad.text
    assert (await admin.post(f"{url}/control", {"action": "start"})).status_code == 303
    assert await service.materialize(otklik.ctx, broadcast_id) == 2  # chats 0 and 1
    page = await admin.http.get(url)
    assert 'data-testid="done">0 / 2<' in page.text and 'data-count="pending">2<' in page.text
    assert 'data-testid="do-pause"' in page.text and 'data-testid="do-start"' not in page.text
    assert 'data-testid="eta"' not in page.text  # nothing sent yet: no rate to go by
    # the runner hands one delivery to the kernel and it is sent: 1 of 2 done, the ETA from the rate
    assert await service.enqueue(otklik.ctx, broadcast_id, 1) == 1
    await _set_messages(otklik, broadcast_id, status="sent")
    page = await admin.http.get(url)
    assert 'data-testid="done">1 / 2<' in page.text and 'data-count="sent">1<' in page.text
    assert 'data-count="pending">1<' in page.text and 'data-testid="eta"' in page.text
    # the second one fails: its reason is shown (escaped), nothing is left so no ETA
    assert await service.enqueue(otklik.ctx, broadcast_id, 5) == 1
    await _set_messages(otklik, broadcast_id, status="failed", error="<b>403</b> bot was blocked", only_unsent=True)
    page = await admin.http.get(url)
    assert 'data-testid="done">2 / 2<' in page.text and 'data-count="failed">1<' in page.text
    assert "&lt;b&gt;403&lt;/b&gt; bot was blocked: 1" in page.text and 'data-testid="eta"' not in page.text
    # the buyer of the sent one answers, the other opts out: both counted
    await message(otklik.db, shop[0], "in", utcnow())
    async with otklik.db.write() as session:
        await session.execute(update(Contact).where(Contact.display_name == "<script>alert(1)</script>")
                              .values(subscribed=False))  # fmt: skip
    page = await admin.http.get(url)
    assert 'data-count="replied">1<' in page.text and 'data-count="opted_out">1<' in page.text

    assert (await admin.post(f"{url}/control", {"action": "pause"})).status_code == 303
    twice = await admin.post(f"{url}/control", {"action": "pause"})
    assert twice.status_code == 409 and "is paused: cannot pause" in twice.text
    async with otklik.db.read() as session:
        assert (await service.get(session, broadcast_id)).status == "paused"
    assert (await admin.post(f"{url}/control", {"action": "resume"})).status_code == 303
    assert (await admin.post(f"{url}/control", {"action": "cancel"})).status_code == 303
    page = await admin.http.get(url)
    assert 'data-testid="status">cancelled' in page.text and 'data-testid="do-' not in page.text
    again = await admin.post(f"{url}/control", {"action": "resume"})
    assert again.status_code == 409 and "cancelled: cannot resume" in again.text

    assert (await admin.http.get("/admin/outreach/broadcasts/999999")).status_code == 404
    assert (await admin.post("/admin/outreach/broadcasts/999999/control", {"action": "start"})).status_code == 404
    assert (await admin.http.get("/admin/outreach/broadcasts/99999999999999999999")).status_code == 422


async def test_deleted_segment_shows_on_the_page(otklik: Otklik, shop: list[int], as_role) -> None:  # type: ignore[no-untyped-def]
    """A broadcast whose segment is gone still renders (the runner pauses it with the reason)."""
    admin = await as_role(Role.ADMIN)
    async with otklik.db.write() as session:
        segment = await service.save_segment(session, "gone", json.loads(VIP), actor="t")
        broadcast_id = await service.create(session, name="x", message={"text": "hi"}, segment="gone", actor="t")
        await service.control(session, broadcast_id, "start", actor="t")
        await session.execute(segments.delete().where(segments.c.id == segment))
    await service.materialize(otklik.ctx, broadcast_id)
    page = await admin.http.get(f"/admin/outreach/broadcasts/{broadcast_id}")
    assert page.status_code == 200 and "its segment was deleted" in page.text and 'data-testid="do-resume"' in page.text
