# ruff: noqa: F811  (the admin fixtures are imported by name)
"""The cashback admin over HTTP: roles, campaign form (every field, errors keep the input), QR downloads,
moderation decisions, payouts with masked details, the registry exports, the funnel."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from otklik.adapters.db.models import Conversation, EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.payouts import seal
from otklik.capabilities.cashback.rules import PayoutDetails
from otklik.clock import utcnow
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.users import Role
from tests.fixtures.admin import anon, app, as_role, users  # noqa: F401 - fixtures

MY_ROUTES = ("/admin/campaigns", "/admin/claims", "/admin/payouts")
FORM = {
    "name": "Весна",
    "status": "active",
    "reward": "150",
    "products": "123456789 Гель 50 мл\n234567890",
    "condition": "any",
    "min_rating": "1",
    "one_per_buyer": "1",
    "auto_approve": "1",
    "budget": "15000",
    "max_claims": "100",
    "starts_at": "2025-03-01T10:00",
    "ends_at": "2030-03-01T10:00",
    "erase_after_days": "30",
    "text_terms": "Бонус {amount} за честный отзыв!",
}


async def test_roles_on_cashback_pages(as_role) -> None:  # type: ignore[no-untyped-def]
    expected = {
        Role.OWNER: (200, 200, 200),
        Role.ADMIN: (200, 200, 200),
        Role.MODERATOR: (403, 200, 200),
        Role.OPERATOR: (403, 403, 403),
        Role.ANALYST: (403, 403, 403),
    }
    for role, codes in expected.items():
        client = await as_role(role)
        got = tuple([(await client.http.get(u, headers={"accept": "text/html"})).status_code for u in MY_ROUTES])
        assert got == codes, role
        csv = await client.http.get("/admin/payouts/registry.csv")
        assert csv.status_code == (200 if role in (Role.OWNER, Role.ADMIN, Role.MODERATOR) else 403)


async def test_campaign_form_every_field_errors_keep_input_and_qr(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/campaigns/new")
    assert "запрещают поощрять только положительные" in page.text or "forbid rewarding only positive" in page.text
    bad = await admin.post("/admin/campaigns", {**FORM, "reward": "сто"})
    assert bad.status_code == 422 and "reward" in bad.text and "123456789 Гель 50 мл" in bad.text
    created = await admin.post("/admin/campaigns", FORM)
    assert created.status_code == 303
    async with otklik.db.read() as session:
        (row,) = (await session.execute(select(CashbackCampaign))).scalars().all()
    assert (row.reward_kopecks, row.budget_kopecks, row.max_claims, row.condition) == (15000, 1500000, 100, "any")
    assert [p["nm_id"] for p in row.products["items"]] == [123456789, 234567890]
    assert row.texts == {"terms": "Бонус {amount} за честный отзыв!"}
    edit = await admin.http.get(f"/admin/campaigns/{row.id}")
    assert f"/chat?start=cb_{row.id}" in edit.text
    png = await admin.http.get(f"/admin/campaigns/{row.id}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = await admin.http.get(f"/admin/campaigns/{row.id}/qr.svg")
    assert svg.status_code == 200 and b"<svg" in svg.content
    saved = await admin.post(f"/admin/campaigns/{row.id}", {**FORM, "condition": "rating", "min_rating": "4"})
    assert saved.status_code == 303
    hostile = await admin.post(f"/admin/campaigns/{row.id}", {**FORM, "name": "<script>alert(1)</script>"})
    assert hostile.status_code == 303
    listing = await admin.http.get("/admin/campaigns")
    assert "<script>alert(1)</script>" not in listing.text and "&lt;script&gt;" in listing.text
    async with otklik.db.read() as session:
        kinds = [
            k for (k,) in (await session.execute(select(EventLog.kind).where(EventLog.kind.like("campaign.%")))).all()
        ]
    assert kinds.count("campaign.update") == 2 and kinds.count("campaign.create") == 1
    audit_page = await admin.http.get("/admin/audit", params={"kind": "campaign."})
    assert audit_page.status_code == 200 and "campaign.create" in audit_page.text  # an audit kind, shown there


async def _claim(otklik: Otklik, campaign_id: int, state: str, sender: str, **values: object) -> int:
    await otklik.ingest(InboundEvent(1, f"m-{sender}", sender, EventKind.TEXT, text="привет"))
    async with otklik.db.write() as session:
        conv = (await session.execute(select(Conversation).order_by(Conversation.id.desc()).limit(1))).scalar_one()
        row = CashbackClaim(
            campaign_id=campaign_id,
            contact_id=conv.contact_id,
            conversation_id=conv.id,
            channel_account_id=conv.channel_account_id,
            state=state,
            nm_id=123456789,
            product_name="Гель",
            amount_kopecks=15000,
            checks={},
            reasons={"items": ["wb_text_uncertain"]},
            matched={},
            nudges={},
            created_at=utcnow(),
            updated_at=utcnow(),
            screenshot_at=utcnow(),
            **values,
        )
        session.add(row)
        await session.flush()
        return int(row.id)


async def test_moderation_and_payouts_mask_details_except_the_registry(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    await admin.post("/admin/campaigns", FORM)
    async with otklik.db.read() as session:
        campaign_id = int(await session.scalar(select(CashbackCampaign.id)) or 0)
    details = PayoutDetails("card", card="4276160000000008")
    secret = seal(otklik.vault, details)
    ids = [
        await _claim(
            otklik,
            campaign_id,
            "moderation",
            f"b{i}",
            payout_secret=secret,
            payout_masked=details.masked(),
            payout_method="card",
        )
        for i in range(3)
    ]
    moderator = await as_role(Role.MODERATOR)
    queue = await moderator.http.get("/admin/claims")
    assert all(f'data-claim="{i}"' in queue.text for i in ids) and "4276160000000008" not in queue.text
    detail = await moderator.http.get(f"/admin/claims/{ids[0]}")
    assert "•••• 0008" in detail.text and "4276160000000008" not in detail.text
    rejected = await moderator.post(f"/admin/claims/{ids[2]}/reject", {"reason": "not_found"})
    assert rejected.status_code == 303
    bulk = await moderator.http.post(
        "/admin/claims/approve", data={"csrf_token": moderator.csrf, "ids": [str(ids[0]), str(ids[1])]}
    )
    assert bulk.status_code == 303 and "done=2" in bulk.headers["location"]
    payouts_page = await moderator.http.get("/admin/payouts")
    assert "•••• 0008" in payouts_page.text and "4276160000000008" not in payouts_page.text
    csv = await moderator.http.get("/admin/payouts/registry.csv")
    assert csv.status_code == 200 and csv.text.count("4276160000000008") == 2
    xlsx = await moderator.http.get("/admin/payouts/registry.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and [c.value for c in sheet["G"]][1:] == ["4276160000000008"] * 2
    paid = await moderator.http.post("/admin/payouts/paid", data={"csrf_token": moderator.csrf, "ids": [str(ids[0])]})
    assert "done=1" in paid.headers["location"]
    funnel = await moderator.http.get(f"/admin/campaigns/{campaign_id}/funnel")
    assert funnel.status_code == 200 and 'data-k="paid">1<' in funnel.text and 'data-k="rejected">1<' in funnel.text
    async with otklik.db.read() as session:
        events = (
            await session.execute(
                select(EventLog.kind, EventLog.data).where(
                    EventLog.kind.like("payout.%") | EventLog.kind.like("claim.%")
                )
            )
        ).all()
        rejected_claim = await session.get(CashbackClaim, ids[2])
    kinds = [k for k, _ in events]
    assert {"claim.reject", "claim.approve", "payout.export", "payout.paid"} <= set(kinds)
    assert all("4276" not in str(d) for _, d in events)
    assert rejected_claim is not None and rejected_claim.payout_secret is None


async def test_the_role_matrix_on_every_cashback_route(app, anon, as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    """tests/admin/test_routes.py's matrix, on the cashback routes only (that test stops at the first
    failing area): anonymous refused, every role allowed or refused exactly by its permission, and the
    routes that need an existing row answer without a server error."""
    from tests.admin.test_routes import admin_routes, concrete, perm_of

    prefixes = ("/admin/campaigns", "/admin/claims", "/admin/payouts")
    routes = [(m, p, r, perm_of(r)) for m, p, r in admin_routes(app) if p.startswith(prefixes)]
    assert len(routes) >= 15 and all(perm is not None for *_, perm in routes)
    for method, path, _route, _perm in routes:
        refused = await anon.request(method, concrete(path), headers={"accept": "application/json"})
        assert refused.status_code == 401, f"{method} {path}"
    for role in Role:
        client = await as_role(role)
        for method, path, _route, perm in routes:
            url = concrete(path)
            if method == "GET":
                response = await client.http.get(url, headers={"accept": "text/html"})
            else:
                response = await client.post(url, {})
            if perm not in otklik.role_perms[role]:
                assert response.status_code == 403, f"{role} reached {method} {path}: {response.status_code}"
            else:
                assert response.status_code != 403 and response.status_code < 500, f"{role} {method} {path}"
                if method == "GET" and "{" not in path:
                    assert response.status_code == 200, f"{role} could not open {path}"
