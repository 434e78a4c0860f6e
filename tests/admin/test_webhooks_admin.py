"""Settings → Webhooks: owner/admin only, CSRF, bad input refused with nothing stored, secrets shown once and
stored encrypted, failures visible, Resend. SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import func, select, update

from otklik.adapters.db.models import EventLog, WebhookDelivery, WebhookEndpoint
from otklik.clock import utcnow
from otklik.platform.users import Role
from otklik.platform.webhooks import emit

PAGE = "/admin/settings/webhooks"


async def _endpoints(otklik) -> list[WebhookEndpoint]:  # type: ignore[no-untyped-def]
    async with otklik.db.read() as session:
        return list((await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).scalars())


async def test_owner_adds_an_endpoint_and_sees_the_secret_once(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    page = await owner.http.get(PAGE)
    assert page.status_code == 200 and 'id="add-webhook"' in page.text
    added = await owner.post(
        PAGE, {"url": "https://n8n.example.com/webhook/otklik", "events": "order.confirmed, order.paid"}
    )
    assert added.status_code == 201
    secret = re.search(r'data-testid="new-secret">([^<]+)<', added.text).group(1)
    assert secret.startswith("whsec_")
    [row] = await _endpoints(otklik)
    assert row.events == "order.confirmed,order.paid" and row.created_by.endswith("owner")
    assert secret not in row.secret and otklik.vault.decrypt(row.secret) == secret
    again = await owner.http.get(PAGE)
    assert secret not in again.text and "n8n.example.com" in again.text
    assert again.headers["cache-control"] == "no-store"
    async with otklik.db.read() as session:
        audit = await session.scalar(select(EventLog).where(EventLog.kind == "webhook.add"))
    assert audit is not None and secret not in str(audit.data)
    # a given secret is not echoed
    given = await owner.post(
        PAGE, {"url": "http://10.0.0.5:5678/webhook/x", "events": "*", "secret": "my-own-secret-1234567"}
    )
    assert given.status_code == 201 and "my-own-secret-1234567" not in given.text


async def test_bad_input_is_refused_and_nothing_is_stored(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    cases = [
        ({"url": "ftp://x.example/hook", "events": "order.paid"}, "http:// or https://"),
        ({"url": "javascript:alert(1)", "events": "order.paid"}, "http:// or https://"),
        ({"url": "https://user:pw@x.example/", "events": "order.paid"}, "no user or password"),
        ({"url": "https://", "events": "order.paid"}, "host"),
        ({"url": "https://x.example/" + "a" * 2100, "events": "order.paid"}, "2000"),
        ({"url": "https://x.example/a b", "events": "order.paid"}, "spaces"),
        ({"url": "https://x.example:99999/", "events": "order.paid"}, "valid URL"),
        ({"url": "https://x.example/", "events": ""}, "events"),
        ({"url": "https://x.example/", "events": "<script>alert(1)</script>"}, "not an event type"),
        ({"url": "https://x.example/", "events": "order.paid", "secret": "short"}, "secret"),
        ({"url": "https://x.example/", "events": "order.paid", "secret": "has spaces in it ok?"}, "secret"),
    ]
    for form, message in cases:
        response = await admin.post(PAGE, form)
        assert response.status_code == 422, (form, response.status_code)
        assert message in response.text.replace("&#39;", "'"), (form, message)
        assert "<script>alert(1)</script>" not in response.text  # escaped, in the error and in the form
    assert await _endpoints(otklik) == []
    too_long = await admin.post(PAGE, {"url": "https://x.example/", "events": "a" * 5000})
    assert too_long.status_code == 422 and await _endpoints(otklik) == []


async def test_other_roles_and_missing_csrf_are_refused(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.OPERATOR, Role.ANALYST, Role.MODERATOR):
        client = await as_role(role)
        assert (await client.http.get(PAGE)).status_code == 403
        assert (await client.post(PAGE, {"url": "https://x.example/", "events": "*"})).status_code == 403
    owner = await as_role(Role.OWNER)
    no_csrf = await owner.http.post(PAGE, data={"url": "https://x.example/", "events": "*"})
    assert no_csrf.status_code in (400, 403)
    assert await _endpoints(otklik) == []


async def test_failures_are_visible_and_resend_requeues(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    await owner.post(PAGE, {"url": "http://127.0.0.1:9/hook", "events": "order.*"})
    [endpoint] = await _endpoints(otklik)
    async with otklik.db.write() as session:
        event_id = await emit(session, "order.confirmed", {"number": "A-1"}, now=utcnow(), subject="order:A-1")
    async with otklik.db.write() as session:
        await session.execute(
            update(WebhookDelivery).values(
                status="gave_up", attempts=31, last_status_code=500, last_error="HTTP 500: <b>boom</b>"
            )
        )
        delivery_id = await session.scalar(select(WebhookDelivery.id))
    page = await owner.http.get(PAGE + "?problems=1")
    assert f'data-delivery="{delivery_id}" data-status="gave_up"' in page.text
    assert event_id in page.text and "HTTP 500: &lt;b&gt;boom&lt;/b&gt;" in page.text
    resent = await owner.post(f"{PAGE}/deliveries/{delivery_id}/resend")
    assert resent.status_code == 303 and resent.headers["location"].endswith("done=resent")
    async with otklik.db.read() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        audits = await session.scalar(select(func.count()).where(EventLog.kind == "webhook.resend"))
    assert row is not None and (row.status, row.attempts) == ("pending", 0) and audits == 1
    missing = await owner.post(f"{PAGE}/deliveries/999999/resend")
    assert missing.status_code == 404
    # disable, test refused while disabled, enable, test, remove
    assert (await owner.post(f"{PAGE}/{endpoint.id}/active", {"active": "0"})).status_code == 303
    assert (await owner.post(f"{PAGE}/{endpoint.id}/test")).status_code == 409
    assert (await owner.post(f"{PAGE}/{endpoint.id}/active", {"active": "maybe"})).status_code == 422
    assert (await owner.post(f"{PAGE}/{endpoint.id}/active", {"active": "1"})).status_code == 303
    assert (await owner.post(f"{PAGE}/{endpoint.id}/test")).status_code == 303
    assert (await owner.post(f"{PAGE}/{endpoint.id}/remove")).status_code == 303
    assert await _endpoints(otklik) == []
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        kinds = set((await session.execute(select(EventLog.kind).where(EventLog.kind.like("webhook.%")))).scalars())
    assert {"webhook.add", "webhook.disable", "webhook.enable", "webhook.test", "webhook.remove"} <= kinds
    assert (await owner.post(f"{PAGE}/{endpoint.id}/remove")).status_code == 404
