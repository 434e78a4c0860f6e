"""Settings → SMS: owner and admin set the provider (secret sealed, never shown), send a test SMS through the
fake gateway; other roles and requests without CSRF are refused; hostile input escaped, nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import EventLog, Setting
from otklik.platform.reach import config
from otklik.platform.users import Role
from otklik.testing.fake_sms import FakeSmsServer

PAGE = "/admin/settings/sms"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSmsServer]:
    async with FakeSmsServer() as server:
        yield server


def _gateway(fake: FakeSmsServer) -> str:
    return json.dumps({
        "url": fake.gateway_url, "body": {"to": "{phone}", "message": "{text}", "from": "{sender}"},
        "auth_header": "Authorization", "success": "status=ok", "id_path": "messages.0.id",
    })  # fmt: skip


async def test_owner_sets_the_gateway_and_sends_a_test_sms(as_role, otklik, fake) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    page = await owner.http.get(PAGE)
    assert page.status_code == 200 and 'data-tab="sms"' in page.text
    saved = await owner.post(
        PAGE, {"provider": "http", "sender": "SalonLen", "secret": "Bearer gw-secret", "http": _gateway(fake)}
    )
    assert saved.status_code == 303
    shown = await owner.http.get(PAGE)
    assert "gw-secret" not in shown.text and fake.gateway_url in shown.text
    async with otklik.db.read() as session:
        stored = await session.get(Setting, config.KEY)
        audited = await session.scalar(select(EventLog).where(EventLog.kind == "reach.sms_settings"))
    assert stored is not None and "gw-secret" not in json.dumps(stored.value)
    assert audited is not None and "gw-secret" not in str(audited.data)
    sent = await owner.post(f"{PAGE}/test", {"to": "8 917 123-45-67", "text": "Проверка"})
    assert sent.status_code == 200, sent.text
    (sms,) = fake.sent
    assert (sms.to, sms.text, sms.sender) == ("79171234567", "Проверка", "SalonLen") and sms.sms_id in sent.text
    # an empty secret keeps the stored one
    assert (await owner.post(PAGE, {"provider": "http", "sender": "Salon2", "http": _gateway(fake)})).status_code == 303
    assert (await owner.post(f"{PAGE}/test", {"to": "+79171234567"})).status_code == 200
    assert len(fake.sent) == 2 and fake.sent[1].sender == "Salon2"
    # a refusal by the gateway is shown, not a crash
    fake.unroutable.add("79171234569")
    refused = await owner.post(f"{PAGE}/test", {"to": "+79171234569"})
    assert refused.status_code == 502 and "rejected" in refused.text.replace("&#39;", "'")


async def test_bad_input_is_refused_escaped_and_nothing_stored(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    hostile = "<script>alert(1)</script>"
    cases = [
        ({"provider": hostile}, "provider"),
        ({"provider": "smsru", "sender": hostile}, "sender"),
        ({"provider": "smsru"}, "api_id is required"),
        ({"provider": "http", "http": hostile}, "not JSON"),
        ({"provider": "http", "http": '{"url": "javascript:alert(1)", "body": {}}'}, "http.url"),
        ({"provider": "http", "http": "x" * 5000}, "at most"),
    ]
    for form, message in cases:
        response = await admin.post(PAGE, form)
        assert response.status_code == 422, (form, response.status_code)
        assert message in response.text.replace("&#39;", "'"), (form, message)
        assert hostile not in response.text
    assert (await admin.post(PAGE, {"provider": "smsru", "secret": "x" * 3000})).status_code == 422  # framework cap
    async with otklik.db.read() as session:
        assert await session.get(Setting, config.KEY) is None
    for to in ["", hostile, "+7 917", "1" * 300]:
        response = await admin.post(f"{PAGE}/test", {"to": to})
        assert response.status_code == 422 and hostile not in response.text
    nothing = await admin.post(f"{PAGE}/test", {"to": "+79171234567"})
    assert nothing.status_code == 422 and "no SMS provider" in nothing.text


async def test_other_roles_and_missing_csrf_are_refused(as_role, anon, otklik) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.OPERATOR, Role.MODERATOR, Role.ANALYST):
        client = await as_role(role)
        assert (await client.http.get(PAGE)).status_code == 403
        assert (await client.post(PAGE, {"provider": "none"})).status_code == 403
        assert (await client.post(f"{PAGE}/test", {"to": "+79171234567"})).status_code == 403
    owner = await as_role(Role.OWNER)
    no_csrf = await owner.http.post(PAGE, data={"provider": "none"})
    assert no_csrf.status_code == 403
    assert (await anon.get(PAGE)).status_code in (303, 401)
    async with otklik.db.read() as session:
        assert await session.get(Setting, config.KEY) is None


async def _sent_row(otklik, provider_id: str, key: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from otklik.adapters.db.models import Contact, ReachAttempt
    from otklik.clock import utcnow
    from otklik.platform.reach.service import reach

    async with otklik.db.write() as session:
        contact = Contact(
            display_name="c", created_at=utcnow(), fields={"phone": "+79171234567", "email": "c@x.example"}
        )
        session.add(contact)
        await session.flush()
        await reach(session, contact.id, "Напоминание", routes=("sms", "email"), dedup_key=key)
        await session.execute(
            update(ReachAttempt)
            .where(ReachAttempt.dedup_key == key)
            .values(status="sent", provider="smsru", provider_id=provider_id)
        )


async def test_smsru_status_callback(as_role, anon, otklik) -> None:  # type: ignore[no-untyped-def]
    from otklik.platform.reach.service import attempts_of

    await config.save(otklik.db, otklik.vault, provider="smsru", secret="test-api-id", actor="test")
    owner = await as_role(Role.OWNER)
    page = await owner.http.get(PAGE)
    token = config.callback_token(await config.load(otklik.db), otklik.vault)
    assert len(token) >= 24 and f"/webhooks/sms/smsru/{token}" in page.text
    await _sent_row(otklik, "000000-10000001", "cb:1")
    await _sent_row(otklik, "000000-10000002", "cb:2")
    body = {
        "data[0]": "sms_status\n000000-10000001\n103\n1450097500",
        "data[1]": "sms_status\n000000-10000002\n106\n1450097500",
        "data[2]": "sms_status\n\nnot-a-code",  # malformed: skipped
        "data[3]": "callback_check\n1450097500",
    }
    wrong = await anon.post("/webhooks/sms/smsru/" + "x" * len(token), data=body)
    assert wrong.status_code == 404
    assert [r.status for r in await attempts_of(otklik.db, "cb:1")] == ["sent"]  # nothing changed
    answered = await anon.post(f"/webhooks/sms/smsru/{token}", data=body)
    assert (answered.status_code, answered.text) == (200, "100")
    assert [(r.route, r.status) for r in await attempts_of(otklik.db, "cb:1")] == [("sms", "delivered")]
    assert [(r.route, r.status) for r in await attempts_of(otklik.db, "cb:2")] == [
        ("sms", "failed"),
        ("email", "queued"),
    ]
    again = await anon.post(f"/webhooks/sms/smsru/{token}", data=body)  # a repeat changes nothing
    assert again.text == "100" and len(await attempts_of(otklik.db, "cb:2")) == 2
    huge = await anon.post(f"/webhooks/sms/smsru/{token}", content=b"data[0]=" + b"x" * 70_000)
    assert huge.status_code == 413
    assert (await anon.post("/webhooks/sms/smsru/" + "y" * 200, data=body)).status_code == 422
