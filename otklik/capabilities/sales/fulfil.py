"""What happens to an order after the buyer's turn: the worker's `sales-orders` job (durable, idempotent).

The order row is the work item — nothing is kept in memory, so a restart loses nothing:

1. **executive** (`assigned_at` is null): `staff.assign(session, pack, keys=("brand:…", "category:…"))`
   picks the executive (a rule, else the pack's round robin); the order keeps `assignee_id`, and the
   assignee is notified (`staff.notify`, dedupe `order.confirmed:<number>`) with the summary and the link
   `/admin/sales/orders/<number>` — one transaction; `assigned_at` is set even when the pack has nobody
   (or the order was cancelled before its turn: then nobody is notified).
2. **pre-invoice** (status `confirmed`): the PDF is rendered outside any transaction, stored in the media
   store (content-addressed: a repeat stores nothing new); then one transaction that locks the order and
   re-checks its status writes the `sales_documents` row, the bot message with the PDF attached (outbox:
   sent by the dispatcher, or at once on the web chat) and the status `pre_invoiced` (history row).
3. **invoice** (status `paid`): the ERP's PDF when the payment brought one (already a `sales_documents` row),
   else ours: a number from the invoice series is taken and kept on a document row first (so a crash
   between the number and the PDF re-renders with the same number, no gap), then the PDF as above, and the
   status `invoiced`.

Two workers (or a test calling `process` while the loop runs) never send twice: every write transaction
locks the order (`FOR UPDATE` on PostgreSQL, the SQLite write lock) and re-checks what it is about to do.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.sales import orders
from otklik.capabilities.sales.documents import LABELS, Client, Document, Language, Letterhead, Line, render_pdf
from otklik.capabilities.sales.documents import money as doc_money
from otklik.capabilities.sales.models import config, documents
from otklik.capabilities.sales.models import orders as order_table
from otklik.capabilities.sales.pricing import money
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.outbox import enqueue
from otklik.conversations.packs import load_pack
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.messages import Attachment, OutboundMessage
from otklik.platform.staff.assign import assign
from otklik.platform.staff.members import Member
from otklik.platform.staff.outbox import StaffMessage, notify

log = logging.getLogger(__name__)
EVERY_SECONDS = 5.0
PRE_INVOICE, INVOICE = "pre_invoice", "invoice"


def admin_link(number: str) -> str:
    return f"/admin/sales/orders/{number}"


async def _lock(session: AsyncSession, order_id: int) -> Any:
    query = select(order_table).where(order_table.c.id == order_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def _pack(ctx: RuntimeContext, session: AsyncSession, conversation_id: int | None) -> tuple[str, Any]:
    conv = None
    if conversation_id is not None:
        conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=False)
    account = ctx.accounts.get(conv.channel_account_id) if conv is not None else None
    return (account.pack if account is not None else ctx.settings.default_pack), conv


def summary_text(order: orders.Order, lines: list[dict[str, Any]], assignee: str) -> str:
    c = order.customer
    out = [f"Pedido {order.number} — {money(order.total, order.currency)} ({order.currency})",
           f"Cliente: {c.get('name', '')} · CUIT {c.get('cuit', '')} · {c.get('iva', '')}",
           "Entrega: " + ("retira en el local" if c.get("delivery") == "pickup" else str(c.get("address", "")))]  # fmt: skip
    for line in lines:
        out.append(f"- {line['sku']} — {line['name']}: {line['quantity']} × "
                   f"{money(line['unit_price'], order.currency)} = {money(line['line_total'], order.currency)}")  # fmt: skip
    out.append(f"Subtotal sin IVA: {money(order.subtotal, order.currency)} · IVA {order.iva_rate.normalize():f} %: "
               f"{money(order.iva, order.currency)} · Total: {money(order.total, order.currency)}")  # fmt: skip
    if order.plan:
        out.append(f"Financiación: {order.plan.get('installments', '')} cuotas")
    if order.to_check:
        out.append("⏳ Sujeto a confirmación (datos viejos del catálogo): " + ", ".join(order.to_check)
                   + ". Confirmá precio y stock en el pedido antes de la prefactura.")  # fmt: skip
    out.append(f"Asignado a: {assignee}")
    return "\n".join(out)


async def assign_order(ctx: RuntimeContext, order_id: int, now: datetime) -> bool:
    """Step 1 for one order; False when another worker did it (or it is not due)."""
    async with ctx.db.write() as session:
        row = await _lock(session, order_id)
        if row is None or row.assigned_at is not None:
            return False
        if row.status == orders.CANCELLED:  # cancelled before its turn came: nobody is bothered
            await session.execute(update(order_table).where(order_table.c.id == order_id).values(assigned_at=now))
            return True
        tx = repo.as_tx(session)
        order = await orders.get(tx, order_id)
        assert order is not None
        lines = await orders.lines_of(tx, order_id)
        pack, _conv = await _pack(ctx, session, order.conversation_id)
        keys = await _keys(session, lines)
        member = await assign(session, pack, keys=keys, now=now)
        await session.execute(
            update(order_table).where(order_table.c.id == order_id)
            .values(assignee_id=member.id if member else None, assigned_at=now)
        )  # fmt: skip
        if member is not None:
            message = StaffMessage(
                subject=f"Nuevo pedido {order.number}: {money(order.total, order.currency)}",
                text=summary_text(order, lines, member.name),
                link=admin_link(order.number),
                about=("order", order.number),
            )
            await notify(session, [member], message, dedupe=f"order.confirmed:{order.number}", now=now)
    return True


async def _keys(session: AsyncSession, lines: list[dict[str, Any]]) -> tuple[str, ...]:
    """Rule keys of the order for `assign`: the brands and categories of its products, most money first."""
    from otklik.capabilities.sales.models import products

    ids = [ln["product_id"] for ln in sorted(lines, key=lambda ln: -Decimal(ln["line_total"])) if ln["product_id"]]
    if not ids:
        return ()
    rows = {r.id: r for r in (await session.execute(select(products.c.id, products.c.brand, products.c.category)
                                                   .where(products.c.id.in_(ids)))).all()}  # fmt: skip
    keys: list[str] = []
    for pid in ids:
        r = rows.get(pid)
        if r is None:
            continue
        for key in (f"brand:{r.brand}".lower(), f"category:{r.category}".lower()):
            if not key.endswith(":") and key not in keys:
                keys.append(key)
    return tuple(keys)


def _document(
    kind: str,
    number: str,
    order: orders.Order,
    lines: list[dict[str, Any]],
    cfg: Any,
    logo: bytes | None = None,
    language: Language = "es",
) -> Document:
    c = order.customer
    include = bool(lines) and all(bool(ln["prices_include_iva"]) for ln in lines)
    plan = order.plan or {}
    financing = tuple(f"{k}: {v}" for k, v in plan.items() if v not in (None, "")) if plan else ()
    return Document(
        kind="pre_invoice" if kind == PRE_INVOICE else "invoice",
        number=number,
        issued=order.created_at.date() if kind == PRE_INVOICE else utcnow().date(),
        seller=Letterhead(cfg.seller_name or "", cfg.seller_cuit or "", cfg.seller_address or "", logo),
        client=Client(
            str(c.get("name", "")),
            str(c.get("cuit", "")),
            str(c.get("iva", "")),
            None if c.get("delivery") == "pickup" else str(c.get("address") or ""),
        ),
        lines=tuple(
            Line(
                str(ln["sku"]),
                str(ln["name"]),
                int(ln["quantity"]),
                Decimal(ln["unit_price"]),
                Decimal(ln["line_total"]),
            )
            for ln in lines
        ),
        subtotal=order.subtotal,
        iva_rate=order.iva_rate,
        iva_amount=order.iva,
        total=order.total,
        currency=order.currency,
        valid_until=order.valid_until.date() if kind == PRE_INVOICE else None,
        financing=financing,
        payment_instructions=tuple(x.strip() for x in (cfg.payment_instructions or "").splitlines() if x.strip()),
        lines_include_iva=include,
        language=language,
    )


async def _logo(ctx: RuntimeContext, media_id: str | None) -> bytes | None:
    """The seller's logo (checked when it was uploaded); a file gone from the media store is logged and the
    document goes out without it rather than not at all."""
    if not media_id:
        return None
    try:
        return await ctx.media.read(media_id)
    except KeyError:
        log.warning("sales: the seller's logo %s is missing from the media store; documents go without it", media_id)
        return None


_TEXTS = {
    "es": {
        PRE_INVOICE: "Te envío la prefactura del pedido {number} por {total}. Cuando registremos el pago te "
        "mandamos la factura.",
        INVOICE: "Recibimos el pago del pedido {number}. Te envío la factura {doc}.",
    },
    "en": {
        PRE_INVOICE: "Here is the pre-invoice of your order {number} for {total}. Once we register the payment "
        "we will send you the invoice.",
        INVOICE: "We received the payment of your order {number}. Here is the invoice {doc}.",
    },
    "ru": {
        PRE_INVOICE: "Отправляю предварительный счёт по заказу {number} на сумму {total}. Когда оплата поступит, "
        "пришлём счёт-фактуру.",
        INVOICE: "Оплата заказа {number} получена. Отправляю счёт-фактуру {doc}.",
    },
}
_FILES = {"es": ("prefactura", "factura"), "en": ("pre-invoice", "invoice"), "ru": ("schet", "schet-faktura")}


def document_language(ctx: RuntimeContext, pack: str) -> Language:
    """The pack's language when the documents have labels in it (es, ru, en), else Spanish."""
    engine = ctx.engines.get(pack)
    language = engine.pack.language if engine is not None else None
    if language is None:
        try:
            language = load_pack(pack, ctx.settings.packs_dirs).config.language
        except (NotFound, InvalidInput, OSError):
            language = "es"
    language = language.lower()[:2]
    return cast(Language, language) if language in LABELS else "es"


async def send_document(ctx: RuntimeContext, order_id: int, kind: str, now: datetime) -> bool:
    """Steps 2 and 3 for one order (see the module doc); False when it was not due any more."""
    # a pre-invoice is due while the order is confirmed, or partially paid before it went out
    due = (orders.CONFIRMED, orders.PARTIALLY_PAID) if kind == PRE_INVOICE else (orders.PAID,)
    async with ctx.db.write() as session:  # the document's number first (ours: from the invoice series)
        row = await _lock(session, order_id)
        if row is None or row.status not in due or (kind == PRE_INVOICE and row.to_check):
            return False  # not due, or lines "sujeto a confirmación" an executive has not confirmed yet
        tx = repo.as_tx(session)
        cfg = (await session.execute(select(config).where(config.c.id == 1))).first()
        assert cfg is not None  # written by the migration
        doc = (await session.execute(select(documents).where(documents.c.order_id == order_id,
                                                             documents.c.kind == kind))).first()  # fmt: skip
        if doc is None:
            number = row.number if kind == PRE_INVOICE else await orders.next_number(tx, cfg.invoice_series)
            await session.execute(insert(documents).values(
                order_id=order_id, kind=kind, number=number, source="ours", media_id="", filename="", size=0,
                created_at=now))  # fmt: skip
            doc = (await session.execute(select(documents).where(documents.c.order_id == order_id,
                                                                 documents.c.kind == kind))).first()  # fmt: skip
        order = await orders.get(tx, order_id)
        lines = await orders.lines_of(tx, order_id)
        pack, _conv = await _pack(ctx, session, row.conversation_id)
    language = document_language(ctx, pack)
    assert doc is not None and order is not None
    media_id, size, filename = doc.media_id, doc.size, doc.filename
    if not media_id:  # render outside the transaction (CPU work), then store
        logo = await _logo(ctx, cfg.logo_media_id)
        pdf = await asyncio.to_thread(render_pdf, _document(kind, doc.number, order, lines, cfg, logo, language))
        filename = f"{_FILES[language][0 if kind == PRE_INVOICE else 1]}-{doc.number}.pdf"
        stored = await ctx.media.save(pdf, "application/pdf", filename)
        media_id, size = stored.media_id, stored.size
    local = False
    conversation_id = None
    async with ctx.db.write() as session:
        row = await _lock(session, order_id)
        if row is None or row.status not in due:
            return False
        fresh = (await session.execute(select(documents.c.sent_at).where(documents.c.id == doc.id))).first()
        if fresh is None or fresh.sent_at is not None:
            return False
        await session.execute(update(documents).where(documents.c.id == doc.id)
                              .values(media_id=media_id, size=size, filename=filename[:120], sent_at=now))  # fmt: skip
        conv = None
        if order.conversation_id is not None:
            conv = await repo.load_conversation(session, conversation_id=order.conversation_id, lock=True)
        if conv is not None:
            total = doc_money(order.total, order.currency, language)
            text = _TEXTS[language][kind].format(number=order.number, total=total, doc=doc.number)
            attachment = Attachment(kind="file", media_id=media_id, filename=filename, content_type="application/pdf",
                                    size=size, caption=doc.number)  # fmt: skip
            local = ctx.is_local(conv.channel_account_id)
            await enqueue(session, conv.id, conv.channel_account_id, conv.recipient,
                          OutboundMessage(text=text, attachments=(attachment,)), author="bot", now=now, local=local)  # fmt: skip
            conversation_id = conv.id
        if row.status == orders.PARTIALLY_PAID:  # the status tells the payments; the history tells the document
            await orders.note(repo.as_tx(session), order_id, "bot", now, f"{kind} {doc.number}")
        else:
            after = orders.PRE_INVOICED if kind == PRE_INVOICE else orders.INVOICED
            await orders.set_status(repo.as_tx(session), order_id, after, "bot", now, note=f"{kind} {doc.number}")
    if conversation_id is not None:
        if local:
            ctx.notifier.delivered(conversation_id)
        else:
            ctx.notifier.outbox_changed()
    return True


_UNASSIGNED = select(order_table.c.id).where(order_table.c.assigned_at.is_(None)).order_by(order_table.c.id)
_PRE_INVOICE_SENT = (
    select(documents.c.id)
    .where(documents.c.order_id == order_table.c.id, documents.c.kind == PRE_INVOICE, documents.c.sent_at.is_not(None))
    .exists()
)
_DUE = (
    select(order_table.c.id, order_table.c.status)
    .where(
        or_(
            and_(order_table.c.status == orders.CONFIRMED, order_table.c.to_check.is_(None)),
            order_table.c.status == orders.PAID,
            and_(order_table.c.status == orders.PARTIALLY_PAID, ~_PRE_INVOICE_SENT),
        )
    )
    .order_by(order_table.c.id)
)


async def process(ctx: RuntimeContext, now: datetime | None = None, limit: int = 50) -> int:
    """One round: every due step of every due order (up to `limit` each); returns how many steps ran."""
    now = now or utcnow()
    async with ctx.db.read() as session:
        unassigned = [int(r[0]) for r in (await session.execute(_UNASSIGNED.limit(limit))).all()]
        due = [(int(a), str(b)) for a, b in (await session.execute(_DUE.limit(limit))).all()]
    done = 0
    for order_id in unassigned:
        done += await _safely(assign_order(ctx, order_id, now), order_id)
    for order_id, status in due:
        kind = INVOICE if status == orders.PAID else PRE_INVOICE
        done += await _safely(send_document(ctx, order_id, kind, now), order_id)
    return done


async def _safely(step: Awaitable[bool], order_id: int) -> int:
    try:
        return 1 if await step else 0
    except Exception:  # one bad order (a broken row, a full disk) must not stop the others
        log.exception("sales: order %s: the after-confirmation step failed; retried next round", order_id)
        return 0


async def orders_loop(ctx: RuntimeContext, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    while not stop.is_set():
        try:
            await process(ctx)
        except Exception:  # the supervisor restarts crashed loops
            log.exception("sales: the orders round failed")
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def orders_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): assignment, pre-invoice and invoice of orders."""
    return functools.partial(orders_loop, app.ctx, every=EVERY_SECONDS)


async def reassign(
    ctx: RuntimeContext, session: AsyncSession, number: str, member_id: int, actor: str, now: datetime, note: str = ""
) -> tuple[orders.Order, Member, str]:
    """Give the order to another executive (the admin's "reassign"), in the caller's transaction: the order
    keeps `assignee_id`, a history row names both, the new executive is notified with the summary and the
    link (`staff.notify`). Returns the order, the new member and the previous one's name ("" for nobody).
    `InvalidInput` when the member is unknown, inactive, does not serve the order's pack, is the current
    one, or the order is cancelled."""
    from otklik.adapters.db.models import StaffMember

    tx = repo.as_tx(session)
    found = await orders.get_by_number(tx, number)
    if found is None:
        raise NotFound("no such order")
    row = await _lock(session, found.id)
    order = await orders.get(tx, found.id)
    assert row is not None and order is not None
    if order.status == orders.CANCELLED:
        raise InvalidInput(f"the order {order.number} is cancelled: nobody to assign it to")
    staff_row = await session.get(StaffMember, member_id)
    if staff_row is None:
        raise InvalidInput("no such executive")
    member = Member.of(staff_row)
    pack, _conv = await _pack(ctx, session, order.conversation_id)
    if not member.active:
        raise InvalidInput(f"{member.name} is not active")
    if not member.serves(pack):
        raise InvalidInput(f"{member.name} does not serve the pack {pack} of this order")
    if order.assignee_id == member.id:
        raise InvalidInput(f"the order is assigned to {member.name} already")
    before = ""
    if order.assignee_id is not None:
        previous = await session.get(StaffMember, order.assignee_id)
        before = previous.name if previous is not None else f"#{order.assignee_id}"
    await session.execute(update(order_table).where(order_table.c.id == order.id)
                          .values(assignee_id=member.id, assigned_at=row.assigned_at or now, updated_at=now))  # fmt: skip
    text = f"reassigned from {before or 'nobody'} to {member.name}" + (f": {note}" if note else "")
    await orders.note(tx, order.id, actor, now, text[:500])
    lines = await orders.lines_of(tx, order.id)
    message = StaffMessage(
        subject=f"Pedido {order.number} reasignado a vos: {money(order.total, order.currency)}",
        text=summary_text(order, lines, member.name) + (f"\nNota: {note}" if note else ""),
        link=admin_link(order.number),
        about=("order", order.number),
    )
    await notify(session, [member], message, now=now)
    changed = await orders.get(tx, order.id)
    assert changed is not None
    return changed, member, before
