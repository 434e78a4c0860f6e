"""The pre-invoice and the invoice in the pack's language: labels, money format, the file name and the chat
message (a Russian pack → Russian, the Spanish pack → Spanish, a pack in a language the documents have no
labels for → Spanish). SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from otklik.bootstrap import Otklik
from otklik.capabilities.sales import fulfil
from otklik.capabilities.sales.models import documents
from tests.capabilities.sales.test_admin import _order
from tests.conftest import make_settings


async def _pre_invoice(app: Otklik) -> tuple[str, str]:
    await _order(app)  # no conversation: the documents follow the install's default pack
    assert await fulfil.process(app.ctx) >= 1
    async with app.db.read() as session:
        row = (await session.execute(select(documents).where(documents.c.kind == "pre_invoice"))).one()
    reader = PdfReader(io.BytesIO(await app.ctx.media.read(row.media_id)))
    return row.filename, " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


async def test_a_russian_pack_gets_russian_documents(otklik: Otklik) -> None:
    assert otklik.settings.default_pack == "care-ru"
    filename, text = await _pre_invoice(otklik)
    assert filename == "schet-PV-000001.pdf"
    assert "СЧЁТ (ПРЕДВАРИТЕЛЬНЫЙ) PV-000001" in text and "Итого" in text and "Покупатель" in text
    assert "128 000,00 $" in text.replace("\u00a0", " ") and "PREFACTURA" not in text


@pytest.fixture
async def spanish(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def test_the_spanish_pack_gets_spanish_documents(spanish: Otklik) -> None:
    filename, text = await _pre_invoice(spanish)
    assert filename == "prefactura-PV-000001.pdf"
    assert "PREFACTURA PV-000001" in text and "Total" in text and "$ 128.000,00" in text and "Итого" not in text


async def test_the_language_comes_from_the_pack(otklik: Otklik, tmp_path: Path) -> None:
    for pack_id, language in (("shop-en", "en"), ("shop-de", "de")):
        folder = tmp_path / "packs" / pack_id
        folder.mkdir(parents=True)
        (folder / "pack.yaml").write_text(f"id: {pack_id}\nlanguage: {language}\ndefault_flow: main\n")
    ctx = dataclasses.replace(
        otklik.ctx, settings=otklik.settings.model_copy(update={"packs_dirs": (tmp_path / "packs",)})
    )
    assert fulfil.document_language(ctx, "shop-en") == "en"
    assert fulfil.document_language(ctx, "shop-de") == "es"  # no labels in German: Spanish
    assert fulfil.document_language(ctx, "sales-es") == "es"
    assert fulfil.document_language(ctx, "care-ru") == "ru"
    assert fulfil.document_language(ctx, "../../etc") == "es"  # not a pack: Spanish, no error
