"""/admin/staff: owner and admin only, CSRF, escaped output, bad input refused with nothing stored, audited."""

from __future__ import annotations

from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog, StaffMember, StaffNotification
from otklik.bootstrap import Otklik
from otklik.platform.staff.members import add_member
from otklik.platform.staff.outbox import StaffMessage, notify
from otklik.platform.users import Role


async def _count(otk: Otklik) -> int:
    async with otk.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(StaffMember)) or 0)


async def test_add_deactivate_remove_audited(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/staff")
    assert page.status_code == 200 and 'id="add-staff"' in page.text
    added = await admin.post("/admin/staff", {"name": "<script>alert(1)</script>", "email": "ana@microcom.example",
                                              "telegram_chat_id": "-100123", "packs": "sales-es"})  # fmt: skip
    assert added.status_code == 201, added.text
    assert "<script>alert(1)</script>" not in added.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in added.text
    async with otklik.db.read() as session:
        member = await session.scalar(select(StaffMember))
    assert member is not None and member.packs == "sales-es"
    off = await admin.post(f"/admin/staff/{member.id}", {"active": "0"})
    assert off.status_code == 200
    gone = await admin.post(f"/admin/staff/{member.id}/delete")
    assert gone.status_code == 200 and await _count(otklik) == 0
    async with otklik.db.read() as session:
        kinds = (
            (await session.execute(select(EventLog.kind).where(EventLog.kind.like("staff.%")).order_by(EventLog.id)))
            .scalars()
            .all()
        )
    assert kinds == ["staff.added", "staff.updated", "staff.removed"]


async def test_bad_input_is_refused_and_nothing_stored(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.OWNER)
    for form, says in (
        ({"name": "Ana", "email": "ana@@x"}, "e-mail"),
        ({"name": "Ana", "telegram_chat_id": "chat-1"}, "chat id"),
        ({"name": "Ana", "email": "a@b.example", "packs": "no-such-pack"}, "no pack"),
        ({"name": "Ana"}, "Telegram chat id, or both"),
    ):
        response = await admin.post("/admin/staff", form)
        assert response.status_code == 422 and says in response.text, (form, response.text[:300])
    huge = await admin.post("/admin/staff", {"name": "x" * 5000, "email": "a@b.example"})
    assert huge.status_code == 422
    assert await _count(otklik) == 0
    missing = await admin.post("/admin/staff/999999/delete")
    assert missing.status_code == 404


async def test_operators_and_forged_posts_are_refused(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/staff")).status_code == 403
    assert (await operator.post("/admin/staff", {"name": "Ana", "email": "a@b.example"})).status_code == 403
    admin = await as_role(Role.ADMIN)
    forged = await admin.http.post("/admin/staff", data={"name": "Ana", "email": "a@b.example"})  # no CSRF token
    assert forged.status_code == 403 and await _count(otklik) == 0


async def test_failed_notification_can_be_resent(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    ana = await add_member(otklik.db, "Ana", email="ana@microcom.example", actor="test")
    async with otklik.db.write() as session:
        await notify(session, [ana], StaffMessage("Pedido <b>A-1</b>", "texto"))
        row = await session.scalar(select(StaffNotification))
        assert row is not None
        row.status, row.last_error = "failed", "email: SMTPRecipientsRefused"
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/staff")
    assert "Pedido &lt;b&gt;A-1&lt;/b&gt;" in page.text and f"/admin/staff/notifications/{row.id}/resend" in page.text
    again = await admin.post(f"/admin/staff/notifications/{row.id}/resend")
    assert again.status_code == 200
    async with otklik.db.read() as session:
        status = await session.scalar(select(StaffNotification.status))
    assert status == "pending"
    twice = await admin.post(f"/admin/staff/notifications/{row.id}/resend")
    assert twice.status_code == 422
