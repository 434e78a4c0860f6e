"""`/admin/sales/settings`: IVA rate, price validity, cart lifetime, number series, letterhead and the logo —
saved and audited, used by the cart and the documents; every bad value refused with a clear message and
nothing saved; CSRF and permissions; hostile uploads (not an image, a fake PNG, too large, too many
pixels). SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import re
from decimal import Decimal
from typing import Any

from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.sales import cart as carts
from otklik.capabilities.sales import fulfil, orders
from otklik.capabilities.sales.models import config, documents, series
from otklik.conversations.repo import as_tx
from otklik.platform.users import Role
from tests.capabilities.sales.test_admin import _order

GOOD = {
    "iva_rate": "10,5", "validity_hours": "24", "cart_ttl_hours": "12", "series": "PV", "invoice_series": "FC",
    "prefix_PV": "ped-", "width_PV": "5", "next_PV": "40", "prefix_FC": "FC-", "width_FC": "6", "next_FC": "1",
    "seller_name": "Microcom <b>SA</b>", "seller_cuit": "30-71234567-1", "seller_address": "Av. Siempre Viva 742",
    "payment_instructions": "Alias: MICROCOM.PAGOS\r\nCBU 0000003100000000000000",
}  # fmt: skip


def _image(kind: str = "PNG", size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=kind)
    return out.getvalue()


async def _audits(otklik: Otklik, kind: str) -> list[dict[str, Any]]:
    async with otklik.db.read() as session:
        return [dict(r.data) for r in (await session.execute(select(EventLog).where(EventLog.kind == kind))).scalars()]


async def test_settings_are_saved_audited_and_used(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/sales/settings")
    assert page.status_code == 200 and 'name="iva_rate" value="21.00"' in page.text and "PV-000001" in page.text
    saved = await operator.post("/admin/sales/settings", GOOD)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/sales/settings?saved=settings"
    async with otklik.db.read() as session:
        cfg = await carts.load_config(as_tx(session))
        row = (await session.execute(select(config))).mappings().one()
        pv = (await session.execute(select(series).where(series.c.name == "PV"))).one()
    assert cfg == carts.Config(Decimal("10.50"), 24, 12, "PV")
    assert row["seller_name"] == "Microcom <b>SA</b>" and row["seller_cuit"] == "30-71234567-1"
    assert row["payment_instructions"] == "Alias: MICROCOM.PAGOS\nCBU 0000003100000000000000"
    assert (pv.prefix, pv.width, pv.next_value) == ("PED-", 5, 40)
    [entry] = await _audits(otklik, "sales.settings")
    assert entry["iva_rate"] == {"from": "21.00", "to": "10.50"} and entry["series PV"]["next_value"] == 40
    shown = await operator.http.get("/admin/sales/settings?saved=settings")
    assert "Microcom &lt;b&gt;SA&lt;/b&gt;" in shown.text and "<b>SA</b>" not in shown.text
    assert "PED-00040" in shown.text
    order = await _order(otklik)  # the next order takes its number from the edited series
    assert order.number == "PED-00040" and order.iva_rate == Decimal("10.50")
    same = await operator.post("/admin/sales/settings", {**GOOD, "next_PV": "41"})  # the order took 40
    assert same.status_code == 303 and len(await _audits(otklik, "sales.settings")) == 1  # nothing changed
    moved = await operator.post("/admin/sales/settings", {**GOOD, "next_PV": "45"})
    assert moved.status_code == 303
    assert (await _audits(otklik, "sales.settings"))[-1] == {
        "series PV": {"prefix": "PED-", "width": 5, "next_value": 45}
    }


async def test_bad_settings_are_refused_with_every_reason_and_nothing_saved(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    bad = {**GOOD, "iva_rate": "=1+1", "validity_hours": "0", "cart_ttl_hours": "99999999999",
           "next_PV": "0", "prefix_FC": "<script>", "seller_cuit": "30-71234567-2",
           "seller_name": "x" * 201}  # fmt: skip
    page = await operator.post("/admin/sales/settings", bad)
    assert page.status_code == 422
    for reason in (
        "iva_rate: a percentage",
        "validity_hours: a whole number of hours",
        "cart_ttl_hours",
        "PV: the next number must be",
        "FC: the prefix must be",
        "seller_cuit: not a valid CUIT",
    ):
        assert reason in page.text, reason
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text  # the typed values come back escaped
    for field, value, reason in (
        ("iva_rate", "100.01", "iva_rate"), ("iva_rate", "21.555", "iva_rate"), ("iva_rate", "-5", "iva_rate"),
        ("validity_hours", "1.5", "validity_hours"), ("validity_hours", "-1", "validity_hours"),
        ("series", "NOPE", "no series named"), ("invoice_series", "PV", "two different series"),
        ("prefix_FC", "Ped-", "share a prefix"), ("width_PV", "13", "the width"), ("width_PV", "x", "the width"),
        ("payment_instructions", "línea\x00", "printable"),
    ):  # fmt: skip
        refused = await operator.post("/admin/sales/settings", {**GOOD, field: value})
        assert refused.status_code == 422 and reason in refused.text, (field, value, refused.text[-400:])
    async with otklik.db.write() as session:  # an order was numbered meanwhile: the next number cannot go back
        await session.execute(series.update().where(series.c.name == "PV").values(next_value=50))
    back = await operator.post("/admin/sales/settings", {**GOOD, "next_PV": "45"})
    assert back.status_code == 422 and "can only grow (it is 50)" in back.text
    async with otklik.db.read() as session:
        row = (await session.execute(select(config))).mappings().one()
        pv = (await session.execute(select(series).where(series.c.name == "PV"))).one()
    assert row["iva_rate"] == Decimal("21.00") and row["validity_hours"] == 48 and row["seller_name"] == ""
    assert (pv.prefix, pv.next_value) == ("PV-", 50)
    assert await _audits(otklik, "sales.settings") == []


async def test_settings_need_the_permission_and_the_csrf_token(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.http.get("/admin/sales/settings")).status_code == 403
    assert (await analyst.post("/admin/sales/settings", GOOD)).status_code == 403
    assert (await analyst.post("/admin/sales/settings/logo", {"remove": "1"})).status_code == 403
    operator = await as_role(Role.OPERATOR)
    forged = await operator.http.post("/admin/sales/settings", data=GOOD)
    assert forged.status_code in (400, 403)
    forged_logo = await operator.http.post("/admin/sales/settings/logo", files={"logo": ("l.png", _image())})
    assert forged_logo.status_code in (400, 403)
    async with otklik.db.read() as session:
        assert await session.scalar(select(config.c.iva_rate)) == Decimal("21.00")
        assert await session.scalar(select(config.c.logo_media_id)) == ""


async def test_logo_upload_reaches_the_documents(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    png = _image("PNG")
    up = await operator.http.post("/admin/sales/settings/logo", data={"csrf_token": operator.csrf},
                                  files={"logo": ("logo.png", png, "image/png")})  # fmt: skip
    assert up.status_code == 303, up.text
    page = await operator.http.get("/admin/sales/settings?saved=logo")
    logo_url = re.search(r'src="(/admin/sales/settings/logo/[0-9a-f]{64})"', page.text)
    assert logo_url is not None and "Logo saved" in page.text
    shown = await operator.http.get(logo_url.group(1))
    assert shown.status_code == 200 and shown.content == png and shown.headers["content-type"] == "image/png"
    assert (await operator.http.get("/admin/sales/settings/logo/" + "0" * 64)).status_code == 404
    [entry] = await _audits(otklik, "sales.logo")
    assert entry["type"] == "image/png" and entry["size"] == len(png)
    await _order(otklik)
    assert await fulfil.process(otklik.ctx) >= 1  # the pre-invoice is rendered with the logo
    async with otklik.db.read() as session:
        media_id = await session.scalar(select(documents.c.media_id).where(documents.c.kind == "pre_invoice"))
    pdf = PdfReader(io.BytesIO(await otklik.ctx.media.read(str(media_id))))
    assert len(pdf.pages[0].images) == 1
    jpeg = _image("JPEG")
    up = await operator.http.post("/admin/sales/settings/logo", data={"csrf_token": operator.csrf},
                                  files={"logo": ("logo.jpg", jpeg, "image/jpeg")})  # fmt: skip
    assert up.status_code == 303
    jpeg_url = "/admin/sales/settings/logo/" + hashlib.sha256(jpeg).hexdigest()
    assert (await operator.http.get(jpeg_url)).headers["content-type"] == "image/jpeg"
    assert (await operator.http.get(logo_url.group(1))).status_code == 404  # the old one is not served any more
    removed = await operator.post("/admin/sales/settings/logo", {"remove": "1"})
    assert removed.status_code == 303
    assert (await operator.http.get(jpeg_url)).status_code == 404
    assert len(await _audits(otklik, "sales.logo")) == 3


async def test_hostile_logos_are_refused_and_keep_the_old_one(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    good = _image("PNG")
    assert (await operator.http.post("/admin/sales/settings/logo", data={"csrf_token": operator.csrf},
                                     files={"logo": ("a.png", good)})).status_code == 303  # fmt: skip
    gif = _image("GIF")
    cases = [
        ("gif.png", gif, 422, "PNG or JPEG"),
        ("fake.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, 422, "cannot be read"),
        ("truncated.png", good[: len(good) // 2], 422, "logo:"),
        ("script.png", b"<svg onload=alert(1)>", 422, "PNG or JPEG"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (600 * 1024), 413, "larger than 512 KB"),
        ("wide.png", _image("PNG", (5000, 10)), 422, "at most 4000"),
        ("empty.png", b"", 422, "logo:"),
    ]
    for name, data, status, reason in cases:
        page = await operator.http.post("/admin/sales/settings/logo", data={"csrf_token": operator.csrf},
                                        files={"logo": (name, data)})  # fmt: skip
        assert page.status_code == status and reason in page.text, (name, page.status_code, page.text[-300:])
    none = await operator.post("/admin/sales/settings/logo", {})
    assert none.status_code == 422 and "choose a PNG or JPEG file" in none.text
    assert (await operator.http.get("/admin/sales/settings/logo/" + hashlib.sha256(good).hexdigest())).content == good
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).where(EventLog.kind == "sales.logo")) == 1
    assert orders.CONFIRMED  # (the module is used by _order)
