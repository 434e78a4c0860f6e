"""Import contacts with phone numbers from a CSV (issue #19, docs/outreach.md "Importing contacts"): clients
who never wrote yet, so an outreach (a WhatsApp template, an SMS) can reach them.

The file: UTF-8 with or without a BOM, `,` or `;` between cells (whichever the header line has more of).
Columns, matched case-insensitively: `phone` (required), `name`, `language`, `tags` (several tags in one cell
separated by `|`, `,` or `;` — a tag never holds these), and any other column becomes a contact field
(`fields[<column>]`). Only the columns given are stored; an empty cell changes nothing.

- Phones go to E.164 with `phonenumbers` in a default region (the pack's `region`, or `--region`); the
  number is kept in the contact field `phone` (what `reach` sends SMS to).
- A row matches an existing contact by that `phone` field, or else by a `ContactIdentity` of a WhatsApp
  account whose id is the same number (WhatsApp's `wa_id`: the digits without `+`); a match is updated
  (name, language, the given fields, tags added — never removed), otherwise a contact is created.
- An import never changes `subscribed` / `reachable`: an opted-out contact stays opted out.
- Skipped, with the row number (the header is row 1) and the reason: a bad phone, a phone already in an
  earlier row of the file, a value too long, an invalid language. A cell that looks like a formula (`=`, `+`,
  `-`, `@` first) is stored as text with a leading `'` and reported as a warning.
- Capped: `MAX_BYTES` per file and `MAX_ROWS` rows. The file is read twice as a stream — first to check the
  encoding, the header and the row count (nothing written when they are wrong), then to import in batches of
  `BATCH` rows, each its own transaction — so memory stays bounded by a batch (plus the set of phones seen).
- `dry_run` reads the database to tell created from updated but writes nothing.
- One audit entry `contacts.import` (actor, counts, the file's sha256) in the last batch's transaction.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import phonenumbers
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, Contact, ContactIdentity, ContactTag
from otklik.clock import utcnow
from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput
from otklik.platform.audit import audit
from otklik.platform.reach.text import e164

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
BATCH = 1000
MAX_NAME = 200
MAX_VALUE = 500  # one field's value
MAX_FIELDS = 30  # other columns kept as contact fields
MAX_SKIPPED_SHOWN = 1000  # skipped rows listed in the report (all are counted)
KNOWN = ("phone", "name", "language", "tags")
RESERVED = frozenset({"subscribed", "reachable", "id"})  # never set by an import: ignored columns
_COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")
_TAG = re.compile(r"^[\w\-.:/ ]{1,64}$", re.UNICODE)
_TAG_SPLIT = re.compile(r"[|,;]")


@dataclass
class Skipped:
    row: int
    reason: str

    def view(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


@dataclass
class ImportReport:
    region: str
    sha256: str
    dry_run: bool
    read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    skipped_rows: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the other columns kept as fields
    ignored_columns: list[str] = field(default_factory=list)

    def skip(self, row: int, reason: str) -> None:
        self.skipped += 1
        if len(self.skipped_rows) < MAX_SKIPPED_SHOWN:
            self.skipped_rows.append(Skipped(row, reason))

    def warn(self, row: int, reason: str) -> None:
        if len(self.warnings) < MAX_SKIPPED_SHOWN:
            self.warnings.append(Skipped(row, reason))

    def view(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "sha256": self.sha256,
            "dry_run": self.dry_run,
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "skipped_rows": [s.view() for s in self.skipped_rows],
            "warnings": [w.view() for w in self.warnings],
            "columns": list(self.columns),
            "ignored_columns": list(self.ignored_columns),
        }


@dataclass
class _Row:
    number: int
    phone: str
    name: str | None
    language: str | None
    tags: list[str]
    fields: dict[str, str]


def check_region(region: str) -> str:
    code = (region or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"unknown phone region {region[:8]!r}: a two-letter country code such as RU, AR, ES")
    return code


def to_e164(raw: str, region: str) -> str | None:
    """`platform.reach`'s E.164 rule (the one SMS uses), `None` for a number it refuses."""
    try:
        return e164(raw, region)
    except InvalidInput:
        return None


def defuse(value: str) -> tuple[str, bool]:
    """A cell a spreadsheet would run as a formula is stored as text (`'` in front, `core.cells`)."""
    safe = formula_safe(value, phones=True)  # "+79991234567" alone is a number, not a formula
    return safe, safe != value


def file_size(source: IO[bytes]) -> int:
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(0)
    return size


def _text_lines(source: IO[bytes]) -> Iterator[str]:
    """The file's lines as text (split at `\n`, endings kept for the csv module; the BOM dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        for raw in source:
            yield decoder.decode(raw)
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text: save it as CSV UTF-8") from None
    if tail:
        yield tail


def _reader(source: IO[bytes]) -> tuple[list[str], Iterator[list[str]]]:
    """The header and a csv reader of the rest, as a stream (the delimiter guessed from the header line)."""
    source.seek(0)
    lines = _text_lines(source)
    first = next(lines, "")
    while first and not first.strip():
        first = next(lines, "")
    if not first.strip():
        raise InvalidInput("the file is empty: a header line with a `phone` column is needed")
    delimiter = ";" if first.count(";") > first.count(",") else ","

    def chained() -> Iterator[str]:
        yield first
        yield from lines

    reader = csv.reader(chained(), delimiter=delimiter, strict=True)
    header = next(reader)
    return header, reader


def _rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str] | None]]:
    """Data rows with their row number (header = 1); `None` for a row the csv module could not read."""
    number = 1
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield number, None
            continue
        if not any(c.strip() for c in cells):
            continue
        yield number, cells


def _columns(header: Sequence[str]) -> tuple[dict[str, int], dict[str, int], list[str]]:
    known: dict[str, int] = {}
    other: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw in enumerate(header):
        name = raw.strip().lower().replace(" ", "_")
        if name in KNOWN:
            if name in known:
                raise InvalidInput(f"the column {name!r} appears twice in the header")
            known[name] = index
        elif name in RESERVED or not _COLUMN.match(name) or name in other or len(other) >= MAX_FIELDS:
            ignored.append(raw.strip()[:64])
        else:
            other[name] = index
    if "phone" not in known:
        raise InvalidInput("the header has no `phone` column (columns: phone, name, language, tags, …)")
    return known, other, ignored


def _tags(cell: str, extra: Sequence[str]) -> list[str] | None:
    out = list(extra)
    for raw in _TAG_SPLIT.split(cell):
        tag = " ".join(raw.split()).lower()
        if not tag:
            continue
        if not _TAG.match(tag):
            return None
        if tag not in out:
            out.append(tag)
    return out


def _parse_row(
    number: int,
    cells: list[str],
    known: dict[str, int],
    other: dict[str, int],
    region: str,
    extra_tags: Sequence[str],
    report: ImportReport,
) -> _Row | str:
    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    raw_phone = cell(known["phone"])
    if not raw_phone:
        return "no phone"
    phone = to_e164(raw_phone.lstrip("'"), region)
    if phone is None:
        return f"bad phone for region {region}"
    name: str | None = cell(known.get("name")) or None
    if name is not None:
        if len(name) > MAX_NAME:
            return f"name longer than {MAX_NAME} characters"
        name, formula = defuse(name)
        if formula:
            report.warn(number, "name looks like a formula: stored as text")
    language: str | None = cell(known.get("language")).lower() or None
    if language is not None and not _LANGUAGE.match(language):
        return "language is not a language code such as ru, en, es"
    tags = _tags(cell(known.get("tags")), extra_tags)
    if tags is None:
        return "a tag is 1-64 letters, digits, spaces or - _ . : /"
    fields: dict[str, str] = {}
    for column, index in other.items():
        value = cell(index)
        if not value:
            continue
        if len(value) > MAX_VALUE:
            return f"{column} longer than {MAX_VALUE} characters"
        value, formula = defuse(value)
        if formula:
            report.warn(number, f"{column} looks like a formula: stored as text")
        fields[column] = value
    return _Row(number, phone, name, language, tags, fields)


def scan(source: IO[bytes]) -> tuple[str, int]:
    """The first pass: size, encoding, header and row count; returns (sha256, data rows). Raises
    InvalidInput when the file cannot be imported at all — before anything is written."""
    size = file_size(source)
    if size == 0:
        raise InvalidInput("the file is empty: a header line with a `phone` column is needed")
    if size > MAX_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    digest = hashlib.sha256()
    source.seek(0)
    while chunk := source.read(1024 * 1024):
        digest.update(chunk)
    header, reader = _reader(source)
    _columns(header)
    count = 0
    for _number, _cells in _rows(reader):
        count += 1
        if count > MAX_ROWS:
            raise InvalidInput(f"the file has more than {MAX_ROWS} rows: split it")
    source.seek(0)
    return digest.hexdigest(), count


async def _by_phone_field(session: AsyncSession, phones: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    by_field = Contact.fields["phone"].as_string()
    rows = await session.execute(select(Contact.id, by_field).where(by_field.in_(phones)).order_by(Contact.id))
    for contact_id, phone in rows:
        found.setdefault(str(phone), int(contact_id))
    return found


async def _existing(session: AsyncSession, phones: list[str]) -> dict[str, int]:
    """Contact ids by E.164 phone: the `phone` field first, else a WhatsApp identity of the same number."""
    found = await _by_phone_field(session, phones)
    missing = {p.lstrip("+"): p for p in phones if p not in found}
    if missing:
        rows = await session.execute(
            select(ContactIdentity.contact_id, ContactIdentity.external_id)
            .join(ChannelAccount, ChannelAccount.id == ContactIdentity.channel_account_id)
            .where(ChannelAccount.kind == "whatsapp", ContactIdentity.external_id.in_(list(missing)))
            .order_by(ContactIdentity.contact_id)
        )
        for contact_id, wa_id in rows:
            found.setdefault(missing[str(wa_id)], int(contact_id))
    return found


async def _write(session: AsyncSession, batch: list[_Row], found: dict[str, int], now: datetime) -> None:
    ids = sorted(set(found.values()))
    contacts = {c.id: c for c in (await session.execute(select(Contact).where(Contact.id.in_(ids)))).scalars()}
    tag_rows: list[dict[str, Any]] = []
    fresh = [row for row in batch if found.get(row.phone) not in contacts]
    if fresh:  # one executemany INSERT, then the new ids by phone
        values = [
            {
                "display_name": row.name or "",
                "language": row.language,
                "tags": {"list": list(row.tags)},
                "fields": {**row.fields, "phone": row.phone},
                "created_at": now,
            }  # subscribed / reachable: the model's defaults, as for a person who writes first
            for row in fresh
        ]
        await session.execute(insert(Contact), values)
        new_ids = await _by_phone_field(session, [row.phone for row in fresh])
        for row in fresh:
            tag_rows += [{"contact_id": new_ids[row.phone], "tag": t, "created_at": now} for t in row.tags]
    for row in batch:
        known_id = found.get(row.phone)
        contact = contacts.get(known_id) if known_id is not None else None
        if contact is None:
            continue
        if row.name:
            contact.display_name = row.name
        if row.language:
            contact.language = row.language
        contact.fields = {**(contact.fields or {}), **row.fields, "phone": row.phone}
        have = list((contact.tags or {}).get("list", []))
        new = [t for t in row.tags if t not in have]
        if new:
            contact.tags = {"list": have + new}
            tag_rows += [{"contact_id": contact.id, "tag": t, "created_at": now} for t in new]
    if tag_rows:
        owners = {r["contact_id"] for r in tag_rows}
        query = select(ContactTag.contact_id, ContactTag.tag).where(ContactTag.contact_id.in_(owners))
        present = {(int(c), str(t)) for c, t in await session.execute(query)}
        absent = [r for r in tag_rows if (r["contact_id"], r["tag"]) not in present]
        if absent:
            await session.execute(insert(ContactTag), absent)


async def import_contacts(
    db: Database,
    source: IO[bytes],
    *,
    region: str,
    tags: Sequence[str] = (),
    dry_run: bool = False,
    actor: str = "cli",
    now: datetime | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import the CSV in `source` (a seekable binary file); raises InvalidInput when the whole file is refused
    (too big, too many rows, not UTF-8, empty, no `phone` column, bad region or tag) — nothing written then."""
    code = check_region(region)
    extra: list[str] = []
    for raw in tags:
        cleaned = _tags(raw, ())
        if cleaned is None or not cleaned:
            raise InvalidInput(f"bad tag {raw[:64]!r}: 1-64 letters, digits, spaces or - _ . : /")
        extra += [t for t in cleaned if t not in extra]
    sha, _count = scan(source)
    report = ImportReport(region=code, sha256=sha, dry_run=dry_run)
    header, reader = _reader(source)
    known, other, report.ignored_columns = _columns(header)
    report.columns = list(other)
    when = now or utcnow()
    seen: set[str] = set()
    batch: list[_Row] = []

    async def flush(last: bool) -> None:
        if dry_run:
            async with db.read() as session:
                found = await _existing(session, [r.phone for r in batch]) if batch else {}
            report.updated += sum(1 for r in batch if r.phone in found)
            report.created += sum(1 for r in batch if r.phone not in found)
            batch.clear()
            return
        async with db.write() as session:
            if batch:
                found = await _existing(session, [r.phone for r in batch])
                report.updated += sum(1 for r in batch if r.phone in found)
                report.created += sum(1 for r in batch if r.phone not in found)
                await _write(session, batch, found, when)
            if last:
                audit(session, actor, "contacts.import", "contacts", None, _audit_data(report), now=when)
        batch.clear()

    for number, cells in _rows(reader):
        report.read += 1
        if cells is None:
            report.skip(number, "the row cannot be read as CSV (an unclosed quote or a cell too long)")
            continue
        parsed = _parse_row(number, cells, known, other, code, extra, report)
        if isinstance(parsed, str):
            report.skip(number, parsed)
            continue
        if parsed.phone in seen:
            report.skip(number, f"duplicate: {mask(parsed.phone)} is in an earlier row")
            continue
        seen.add(parsed.phone)
        batch.append(parsed)
        if len(batch) >= batch_size:
            await flush(last=False)
    await flush(last=True)
    return report


def mask(phone: str) -> str:
    """+79171234567 → +7917***4567: enough to find the row, not the whole number in a report or a log."""
    return phone[:5] + "***" + phone[-4:] if len(phone) > 9 else phone


def _audit_data(report: ImportReport) -> dict[str, Any]:
    return {
        "sha256": report.sha256,
        "region": report.region,
        "read": report.read,
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
    }
