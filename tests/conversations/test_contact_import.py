"""CSV import of contacts with phones (issue #19): E.164 in the pack's region, matches by the `phone` field or a
WhatsApp identity, re-import updates, opted-out stays opted out, dry run writes nothing, and hostile files
(bad phones, duplicates, BOM, `;`, formulas, oversized, empty, no phone column, not UTF-8) refused or skipped
with the row and the reason. SQLite and PostgreSQL; the 100 000-row file on SQLite only."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, Contact, ContactIdentity, ContactTag, EventLog
from otklik.clock import utcnow
from otklik.conversations import contact_import
from otklik.conversations.contact_import import import_contacts
from otklik.core.errors import InvalidInput


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


def f(text: str, *, bom: bool = False) -> io.BytesIO:
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + text.encode())


async def contacts(db: Database) -> dict[str, Contact]:
    async with db.read() as session:
        rows = (await session.execute(select(Contact).order_by(Contact.id))).scalars()
        return {str((c.fields or {}).get("phone", c.id)): c for c in rows}


async def count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_import_creates_then_reimport_updates_not_duplicates(db: Database) -> None:
    first = f("phone,name,language,tags,city\n+7 917 123-45-67,Иван,ru,vip|wholesale,Kazan\n89161112233,Пётр,,,\n")
    report = await import_contacts(db, first, region="RU", tags=["imported"], actor="admin:1")
    assert (report.read, report.created, report.updated, report.skipped) == (2, 2, 0, 0)
    stored = await contacts(db)
    ivan = stored["+79171234567"]
    assert ivan.display_name == "Иван" and ivan.language == "ru" and ivan.subscribed
    assert ivan.fields == {"phone": "+79171234567", "city": "Kazan"}
    assert ivan.tags == {"list": ["imported", "vip", "wholesale"]}
    assert stored["+79161112233"].fields == {"phone": "+79161112233"}  # only the columns given
    again = f("phone;name;city\n8 (917) 123 45 67;Иван Иванов;Moscow\n+79990001122;Новый;\n")
    report = await import_contacts(db, again, region="RU", tags=["imported"])
    assert (report.read, report.created, report.updated) == (2, 1, 1)
    stored = await contacts(db)
    assert len(stored) == 3
    assert stored["+79171234567"].display_name == "Иван Иванов" and stored["+79171234567"].fields["city"] == "Moscow"
    assert stored["+79171234567"].tags == {"list": ["imported", "vip", "wholesale"]}  # kept, not duplicated
    assert await count(db, ContactTag) == 3 + 1 + 1  # ivan 3, petr 1, new 1
    async with db.read() as session:
        logs = (await session.execute(select(EventLog).where(EventLog.kind == "contacts.import"))).scalars().all()
    assert [(e.actor, e.data["created"], e.data["updated"]) for e in logs] == [("admin:1", 2, 0), ("cli", 1, 1)]
    assert "+7917" not in str([e.data for e in logs])  # no phones in the audit log


async def test_bad_phones_duplicates_formulas_and_long_values_are_skipped_with_row_and_reason(db: Database) -> None:
    text = (
        "Phone,Name,Language,Tags,Note\n"
        '+7 917 123-45-67,=HYPERLINK("http://evil"),ru,,@SUM(A1)\n'  # row 2: formulas stored as text
        "12345,Bad,ru,,\n"  # 3: bad phone
        "89171234567,Dup,ru,,\n"  # 4: same number as row 2
        ",No phone,,,\n"  # 5
        f"+79161112233,{'x' * 201},,,\n"  # 6: name too long
        "+79161112234,Ok,klingon-language,,\n"  # 7: bad language
        "+79161112235,Ok,,bad<tag>,\n"  # 8: bad tag
        f"+79161112236,Ok,,,{'y' * 501}\n"  # 9: field too long
        "+54 9 11 2345-6789,Ana,es,,\n"  # 10: another country, written with +
    )
    report = await import_contacts(db, f(text), region="RU")
    assert (report.read, report.created, report.skipped) == (9, 2, 7)
    reasons = {s.row: s.reason for s in report.skipped_rows}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert "bad phone" in reasons[3] and "duplicate" in reasons[4] and "+7917***4567" in reasons[4]
    assert reasons[5] == "no phone" and "name longer" in reasons[6] and "language" in reasons[7]
    assert "tag" in reasons[8] and "note longer" in reasons[9]
    assert [w.row for w in report.warnings] == [2, 2]
    stored = await contacts(db)
    assert set(stored) == {"+79171234567", "+5491123456789"}
    assert stored["+79171234567"].display_name == '\'=HYPERLINK("http://evil")'
    assert stored["+79171234567"].fields["note"] == "'@SUM(A1)"


async def test_region_decides_numbers_without_plus(db: Database) -> None:
    report = await import_contacts(db, f("phone\n011 2345-6789\n"), region="ar")
    assert report.created == 1 and report.region == "AR"
    assert set(await contacts(db)) == {"+541123456789"}
    with pytest.raises(InvalidInput, match="region"):
        await import_contacts(db, f("phone\n+79171234567\n"), region="XX")


async def test_bom_semicolons_quotes_and_crlf(db: Database) -> None:
    text = 'phone;name;tags\r\n+79171234567;"Smith; John";"a,b"\r\n\r\n+79161112233;Ann;\r\n'
    report = await import_contacts(db, f(text, bom=True), region="RU")
    assert (report.read, report.created, report.skipped) == (2, 2, 0)
    stored = await contacts(db)
    assert stored["+79171234567"].display_name == "Smith; John" and stored["+79171234567"].tags == {"list": ["a", "b"]}
    assert "\ufeffphone" not in report.columns and report.columns == []


async def test_opted_out_stays_opted_out_and_whatsapp_identity_matches(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        account = ChannelAccount(kind="whatsapp", name="wa", pack="care-ru", config={}, created_at=now)
        stopped = Contact(display_name="Old", subscribed=False, fields={"phone": "+79171234567"}, created_at=now)
        writer = Contact(display_name="Wrote on WhatsApp", created_at=now)
        session.add_all([account, stopped, writer])
        await session.flush()
        session.add(ContactIdentity(contact_id=writer.id, channel_account_id=account.id, external_id="79161112233",
                                    created_at=now))  # fmt: skip
    text = "phone,name,subscribed\n+79171234567,Back,yes\n+79161112233,Named,yes\n"
    report = await import_contacts(db, f(text), region="RU")
    assert (report.created, report.updated) == (0, 2) and report.ignored_columns == ["subscribed"]
    async with db.read() as session:
        rows = {c.id: c for c in (await session.execute(select(Contact))).scalars()}
    assert len(rows) == 2
    assert rows[stopped.id].subscribed is False and rows[stopped.id].display_name == "Back"
    assert rows[writer.id].fields == {"phone": "+79161112233"} and rows[writer.id].display_name == "Named"


async def test_dry_run_writes_nothing_and_reports_the_same(db: Database) -> None:
    await import_contacts(db, f("phone\n+79171234567\n"), region="RU")
    before = (await count(db, Contact), await count(db, EventLog), await count(db, ContactTag))
    text = "phone,name\n+79171234567,Changed\n+79161112233,New\nbad,x\n"
    dry = await import_contacts(db, f(text), region="RU", tags=["t"], dry_run=True)
    assert (dry.created, dry.updated, dry.skipped, dry.dry_run) == (1, 1, 1, True)
    assert (await count(db, Contact), await count(db, EventLog), await count(db, ContactTag)) == before
    assert (await contacts(db))["+79171234567"].display_name == ""
    real = await import_contacts(db, f(text), region="RU", tags=["t"])
    assert (real.created, real.updated, real.skipped, real.sha256) == (1, 1, 1, dry.sha256)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"name,city\nIvan,Kazan\n", "no `phone` column"),
        (b"phone,phone\n1,2\n", "twice"),
        (b"phone\n+79171234567\n\xff\xfe broken\n", "not UTF-8"),
        (b"\xff\xd8\xff\xe0 binary", "not UTF-8"),
    ],
)
async def test_whole_file_refused_before_anything_is_written(db: Database, data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        await import_contacts(db, io.BytesIO(data), region="RU")
    assert await count(db, Contact) == 0 and await count(db, EventLog) == 0


async def test_caps_on_size_and_rows(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contact_import, "MAX_BYTES", 100)
    with pytest.raises(InvalidInput, match="larger than"):
        await import_contacts(db, f("phone\n" + "+79171234567\n" * 10), region="RU")
    monkeypatch.setattr(contact_import, "MAX_BYTES", 10_000)
    monkeypatch.setattr(contact_import, "MAX_ROWS", 3)
    rows = "".join(f"+7916111223{i}\n" for i in range(4))
    with pytest.raises(InvalidInput, match="more than 3 rows"):
        await import_contacts(db, f("phone\n" + rows), region="RU")  # refused whole, not 3 of 4
    assert await count(db, Contact) == 0
    with pytest.raises(InvalidInput, match="bad tag"):
        await import_contacts(db, f("phone\n+79171234567\n"), region="RU", tags=["<script>"])


async def test_unclosed_quote_is_one_skipped_row(db: Database) -> None:
    text = 'phone,name\n+79171234567,ok\n+79161112230,"a"b\n+79161112231,ok\n+79161112233,"never closed\n'
    report = await import_contacts(db, f(text), region="RU", batch_size=1)
    assert (report.created, report.skipped) == (2, 2)
    assert [s.row for s in report.skipped_rows] == [3, 5] and "CSV" in report.skipped_rows[0].reason
    assert set(await contacts(db)) == {"+79171234567", "+79161112231"}


async def test_100_000_rows_in_batches(db: Database, db_url: str) -> None:
    if not db.is_sqlite:
        pytest.skip("the volume case runs on SQLite only")
    lines = ["phone,name,tags"] + [f"+7916{n:07d},Client {n},bulk" for n in range(99_999)]
    lines.append("+79160000005,dup,")
    report = await import_contacts(db, f("\n".join(lines) + "\n"), region="RU")
    assert (report.read, report.created, report.skipped) == (100_000, 99_999, 1)  # exactly the cap
    assert report.skipped_rows[0].row == 100_001
    assert await count(db, Contact) == 99_999 and await count(db, ContactTag) == 99_999
    again = await import_contacts(db, f("\n".join(lines[:2001]) + "\n"), region="RU")
    assert (again.created, again.updated) == (0, 2000)


async def test_a_number_in_another_column_is_not_a_formula(db: Database) -> None:
    report = await import_contacts(db, f("phone,phone2,note\n+79171234567,+79161112233,-5 off\n"), region="RU")
    assert [(w.row, w.reason) for w in report.warnings] == [(2, "note looks like a formula: stored as text")]
    assert (await contacts(db))["+79171234567"].fields == {"phone": "+79171234567", "phone2": "+79161112233",
                                                           "note": "'-5 off"}  # fmt: skip
