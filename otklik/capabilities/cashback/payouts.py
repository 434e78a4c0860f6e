"""Payout details (encrypted at rest, masked everywhere but the bank registry), the registry export
(CSV, XLSX), marking claims paid (buyer notified, audited) and erasing details N days after payout."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.capabilities.cashback import texts
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.notify import Outgoing
from otklik.capabilities.cashback.rules import PayoutDetails, Stage, rubles
from otklik.conversations.context import RuntimeContext
from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput
from otklik.platform.audit import audit

MAX_BULK = 500


def seal(vault: Vault, details: PayoutDetails) -> str:
    return vault.encrypt(json.dumps(details.as_dict(), ensure_ascii=False))


def unseal(vault: Vault, secret: str) -> PayoutDetails:
    data = json.loads(vault.decrypt(secret))
    return PayoutDetails(
        str(data["method"]), str(data.get("phone", "")), str(data.get("bank", "")), str(data.get("card", ""))
    )


@dataclass(frozen=True, slots=True)
class RegistryRow:
    claim_id: int
    campaign: str
    amount: str
    method: str
    phone: str
    bank: str
    card: str
    approved_at: str


REGISTRY_LIMIT = 10_000  # rows in one export: the file stays bounded
REGISTRY_HEADER = ("claim", "campaign", "amount_rub", "method", "sbp_phone", "bank", "card_number", "approved_at")


async def registry_rows(session: AsyncSession, vault: Vault) -> list[RegistryRow]:
    """Approved, unpaid claims with payout details: the only place where details are shown unmasked.

    At most REGISTRY_LIMIT rows; decrypting them (CPU work) runs in a worker thread, off the event loop."""
    rows = (
        await session.execute(
            select(
                CashbackClaim.id,
                CashbackCampaign.name,
                CashbackClaim.amount_kopecks,
                CashbackClaim.payout_secret,
                CashbackClaim.decided_at,
            )
            .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
            .where(CashbackClaim.state == Stage.APPROVED, CashbackClaim.payout_secret.is_not(None))
            .order_by(CashbackClaim.id)
            .limit(REGISTRY_LIMIT)
        )
    ).all()
    sealed = [(int(cid), str(name), int(amount), str(secret), decided) for cid, name, amount, secret, decided in rows]
    return await asyncio.to_thread(_unseal_rows, vault, sealed)


def _unseal_rows(vault: Vault, sealed: Sequence[tuple[int, str, int, str, datetime | None]]) -> list[RegistryRow]:
    out = []
    for claim_id, campaign_name, amount_kopecks, secret, decided_at in sealed:
        details = unseal(vault, secret)
        out.append(
            RegistryRow(
                claim_id=claim_id,
                campaign=campaign_name,
                amount=f"{amount_kopecks / 100:.2f}",
                method=details.method,
                phone=details.phone,
                bank=details.bank,
                card=details.card,
                approved_at=decided_at.strftime("%Y-%m-%d %H:%M") if decided_at else "",
            )
        )
    return out


def _cells(row: RegistryRow) -> list[str]:
    return [str(row.claim_id), row.campaign, row.amount, row.method, row.phone, row.bank, row.card, row.approved_at]


def csv_safe(value: str) -> str:
    """No cell may start a formula (`core.cells.formula_safe`); the phone column's `+7…` stays a number."""
    return formula_safe(value, phones=True)


def registry_csv(rows: Sequence[RegistryRow]) -> bytes:
    """The registry as CSV (CPU work for thousands of rows: async callers run it in a worker thread)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(REGISTRY_HEADER)
    for row in rows:
        writer.writerow([csv_safe(c) for c in _cells(row)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 CSV correctly


def registry_xlsx(rows: Sequence[RegistryRow]) -> bytes:
    """The registry as XLSX (openpyxl is CPU-bound and slow: async callers run it in a worker thread)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "payouts"
    sheet.append(list(REGISTRY_HEADER))
    for row in rows:
        cells: list[object] = list(_cells(row))
        cells[0], cells[2] = row.claim_id, float(row.amount)
        sheet.append([csv_safe(c) if isinstance(c, str) else c for c in cells])
    for column, width in zip("ABCDEFGH", (8, 24, 12, 8, 16, 18, 22, 17), strict=True):
        sheet.column_dimensions[column].width = width
        if column in "EG":
            for cell in sheet[column]:
                cell.number_format = "@"  # keep numbers as text: no 4.27E+15 for a card
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def mark_paid(ctx: RuntimeContext, claim_ids: Sequence[int], *, actor: str, now: datetime) -> list[int]:
    """Approved claims -> paid; the buyer is notified. Returns the ids that changed (others are skipped)."""
    ids = sorted({int(i) for i in claim_ids})[:MAX_BULK]
    if not ids:
        raise InvalidInput("choose at least one claim")
    outgoing = Outgoing(ctx)
    done: list[int] = []
    async with ctx.db.write() as session:
        rows = (
            await session.execute(
                select(CashbackClaim, CashbackCampaign)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .where(CashbackClaim.id.in_(ids), CashbackClaim.state == Stage.APPROVED)
            )
        ).all()
        for claim, campaign in rows:
            claim.state, claim.paid_at, claim.paid_by, claim.updated_at = Stage.PAID, now, actor[:120], now
            audit(session, actor, "payout.paid", "claim", claim.id, {"amount_kopecks": claim.amount_kopecks}, now=now)
            message = texts.text(
                "notify_paid",
                campaign.texts,
                amount=rubles(claim.amount_kopecks),
                claim=claim.id,
                masked=claim.payout_masked or "—",
            )
            await outgoing.send(session, claim.conversation_id, message, now=now)
            done.append(int(claim.id))
    outgoing.delivered()
    return done


async def erase_due(db: Database, now: datetime, *, limit: int = 500) -> int:
    """Erase payout details of claims paid more than their campaign's `erase_after_days` ago."""
    async with db.write() as session:
        rows = (
            await session.execute(
                select(CashbackClaim.id, CashbackClaim.paid_at, CashbackCampaign.erase_after_days)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .where(CashbackClaim.state == Stage.PAID, CashbackClaim.payout_secret.is_not(None))
                .limit(limit)
            )
        ).all()
        due = [r.id for r in rows if r.paid_at and r.paid_at + timedelta(days=int(r.erase_after_days)) <= now]
        if due:
            await erase(session, due, now=now, actor="system:cashback")
    return len(due)


async def erase(session: AsyncSession, claim_ids: Sequence[int], *, now: datetime, actor: str) -> None:
    await session.execute(
        update(CashbackClaim)
        .where(CashbackClaim.id.in_(list(claim_ids)))
        .values(payout_secret=None, payout_masked="удалены", erased_at=now, updated_at=now)
    )
    for claim_id in claim_ids:
        audit(session, actor, "payout.erase", "claim", claim_id, {}, now=now)
