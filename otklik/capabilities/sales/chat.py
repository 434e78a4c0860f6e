"""One sales turn in the conversation: the buyer's message (or button) → the replies, on the step's
transaction. Every price, stock figure, SKU and total in a reply is read from the live product row or
computed by `pricing` — never generated.

Buttons (payloads, all `sales:…`): `add:<product id>:<qty>`, `more`, `cart`, `sum` (the summary),
`ok:<cart id>:<generation>:<version>` (Confirmar), `mod` (Modificar), `rm:<product id>`.

Result: {ok, status, query, page, cart_total, cart_lines, order?, _messages}; `status` is one of `list`,
`product`, `cart`, `choice`, `summary`, `ordered`, `order_status`, `empty`, `none` (nothing about sales
found: the flow answers from the articles).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select

from otklik.capabilities.sales import cart as carts
from otklik.capabilities.sales import customer, orders, pricing, talk
from otklik.capabilities.sales.models import products
from otklik.capabilities.sales.search import Hit, IndexCache, compact, describe, fold
from otklik.capabilities.sales.similar import rank
from otklik.conversations.timers import ACTION_MESSAGES, QuickTx

PAGE = 5
INDEX_KEY = "sales.index"
_SIMILAR = select(products).where(
    products.c.active.is_(True), products.c.stock > 0, products.c.id != bindparam("product_id"),
    products.c.currency == bindparam("currency"), products.c.price >= bindparam("low"),
    products.c.price <= bindparam("high"),
)  # fmt: skip
SHOWN_ATTRIBUTES = ("tech", "resolution", "form", "lens_mm", "channels", "type", "capacity", "outdoor", "poe")
STALE = "sujeto a confirmación"
STALE_NOTE = "⏳ Precio y stock sujetos a confirmación"
STATUS_TEXT = {
    orders.CONFIRMED: "está confirmado; todavía no registramos el pago.",
    orders.PRE_INVOICED: "tiene la prefactura emitida; todavía no registramos el pago.",
    orders.PARTIALLY_PAID: "tiene un pago parcial registrado: pagaste {paid}, falta {balance}.",
    orders.PAID: "tiene el pago acreditado ✅.",
    orders.INVOICED: "está pagado y facturado ✅.",
    orders.CANCELLED: "está cancelado.",
}
DISPATCH_TEXT = {
    orders.CONFIRMED: "Lo despachamos (o queda listo para retirar) cuando se acredita el pago.",
    orders.PRE_INVOICED: "Lo despachamos (o queda listo para retirar) cuando se acredita el pago.",
    orders.PARTIALLY_PAID: "Lo despachamos (o queda listo para retirar) cuando se acredita el pago completo.",
    orders.PAID: "Ya está en preparación para el despacho o el retiro; un ejecutivo te confirma el día.",
    orders.INVOICED: "Está facturado y en preparación para el despacho o el retiro.",
    orders.CANCELLED: "Al estar cancelado no se despacha.",
}


@dataclass(slots=True)
class Reply:
    status: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str, buttons: list[tuple[str, str]] | None = None) -> None:
        message: dict[str, Any] = {"text": text}
        if buttons:
            message["buttons"] = [{"title": t[:64], "payload": p} for t, p in buttons[:12]]
        self.messages.append(message)


@dataclass(slots=True)
class Turn:
    tx: QuickTx
    cache: IndexCache
    conversation_id: int
    contact_id: int
    variables: Mapping[str, Any]
    now: datetime
    cfg: carts.Config = field(default_factory=carts.Config)
    _cutoff: list[datetime | None] = field(default_factory=list)  # stale_before, read once per turn

    # --- helpers -------------------------------------------------------------------------------------

    async def live(self, product_id: int) -> dict[str, Any] | None:
        return await carts.product(self.tx, product_id)

    async def stale(self, row: Mapping[str, Any]) -> bool:
        """The row is older than the configured freshness: its price and stock are quoted "sujeto a
        confirmación" and an order with it waits for an executive's confirmation."""
        if self.cfg.freshness_hours <= 0:
            return False
        if not self._cutoff:
            self._cutoff.append(await carts.stale_before(self.tx, self.cfg, self.now))
        return carts.is_stale(row, self._cutoff[0])

    async def cart(self) -> carts.Cart:
        found = await carts.ensure(self.tx, self.conversation_id, self.contact_id, self.now)
        if found.expires_at is not None and found.expires_at <= self.now and await carts.lines(self.tx, found.id):
            await carts.close_generation(self.tx, found, self.now)  # the expiry job had not run yet
            found = await carts.ensure(self.tx, self.conversation_id, self.contact_id, self.now)
        return found

    def price(self, row: Mapping[str, Any]) -> str:
        label = "IVA incluido" if row["prices_include_iva"] else "+ IVA"
        return f"{pricing.money(Decimal(row['price']), str(row['currency']))} ({label})"

    @staticmethod
    def stock(row: Mapping[str, Any]) -> str:
        stock = int(row["stock"])
        if not row["active"] or stock <= 0:
            return "sin stock"
        return f"stock: {stock} u." if stock > 3 else f"¡últimas {stock} u.!"

    @staticmethod
    def attributes(row: Mapping[str, Any]) -> str:
        attrs = {str(k).lower(): str(v) for k, v in (row["attributes"] or {}).items()}
        shown = [describe(k, fold(attrs[k]) if k in ("outdoor", "poe", "tech") else attrs[k])
                 for k in SHOWN_ATTRIBUTES if k in attrs]  # fmt: skip
        return " · ".join(shown)

    async def alternatives(self, row: Mapping[str, Any], limit: int = 2) -> list[Any]:
        price = Decimal(row["price"])
        params = {"product_id": row["id"], "currency": row["currency"], "low": price * Decimal("0.7"),
                  "high": price * Decimal("1.3")}  # fmt: skip
        found = [dict(r._asdict()) for r in await self.tx.fetch(_SIMILAR, params)]
        return rank(row, found, limit=limit)

    async def totals_extra(self, reply: Reply) -> Reply:
        cart = await carts.get(self.tx, self.conversation_id)
        if cart is not None:
            summary = await carts.summarise(self.tx, cart, self.cfg, self.now, None, fix=False)
            reply.extra.setdefault("cart_total", str(summary.total) if summary.lines else "")
            reply.extra.setdefault("cart_lines", len(summary.lines))
        return reply

    # --- answers -------------------------------------------------------------------------------------

    async def product_card(self, row: Mapping[str, Any], reply: Reply, quantity: int = 1) -> None:
        head = f"{row['name']} — {row['sku']}\nMarca: {row['brand']} · {row['category']}"
        attrs = self.attributes(row)
        if int(row["stock"]) > 0 and row["active"]:
            text = f"{head}\nPrecio: {self.price(row)}\nStock: {self.stock(row)}" + (f"\n{attrs}" if attrs else "")
            if await self.stale(row):
                text += f"\n{STALE_NOTE} (datos del {row['updated_at']:%d/%m/%Y %H:%M} UTC)."
            reply.say(text, [(f"🛒 Agregar {quantity} al carrito", f"sales:add:{row['id']}:{quantity}"),
                             ("Ver carrito", "sales:cart")])  # fmt: skip
            return
        text = f"{head}\nPrecio de lista: {self.price(row)}\nAhora no tiene stock."
        alternatives = await self.alternatives(row)
        if not alternatives:
            reply.say(text + "\nNo tengo un producto similar en stock; si querés, un ejecutivo te avisa cuando entre.")
            return
        lines = [text, "Te ofrezco uno similar en stock:"]
        buttons: list[tuple[str, str]] = []
        for alt in alternatives:
            other = await self.live(int(alt.product["id"])) or alt.product
            lines.append(f"• {other['name']} — {other['sku']} — {self.price(other)}, {self.stock(other)}")
            if alt.same:
                lines.append(f"  Similar: {', '.join(alt.same)}.")
            if alt.differs:
                lines.append(f"  Diferencia: {', '.join(alt.differs)}.")
            buttons.append((f"🛒 {other['sku']}", f"sales:add:{other['id']}:{quantity}"))
        reply.say("\n".join(lines), buttons)

    async def answer(self, text: str, page: int = 1) -> Reply:
        index = await self.cache.get(self.tx)
        hits = index.search(text, 200)
        if not hits:
            return Reply("none")
        query = index.parse(text[:500])
        if query.codes:
            coded = [h for h in hits if h.why and h.why[0].startswith("modelo")]
            if coded:
                top = max(h.score for h in coded)
                best = [h for h in coded if h.score == top]
                if len(best) == 1:
                    reply = Reply("product", extra={"query": "", "page": 1})
                    row = await self.live(int(best[0].product["id"]))
                    if row is None:
                        return Reply("none")
                    await self.product_card(row, reply)
                    return reply
                hits = best
        return await self.listing(text, hits, page)

    async def listing(self, text: str, hits: list[Hit], page: int) -> Reply:
        in_stock = [h for h in hits if int(h.product["stock"]) > 0]
        missing = [h for h in hits if int(h.product["stock"]) <= 0]
        if not in_stock:
            reply = Reply("product", extra={"query": "", "page": 1})
            row = await self.live(int(missing[0].product["id"]))
            if row is None:
                return Reply("none")
            if len(missing) > 1:
                reply.say(f"De lo que encontré ({len(missing)} productos) no hay nada en stock ahora.")
            await self.product_card(row, reply)
            return reply
        pages = (len(in_stock) + PAGE - 1) // PAGE
        page = max(1, min(page, pages))
        shown = in_stock[(page - 1) * PAGE : page * PAGE]
        head = (f"Encontré {len(in_stock)} producto{'s' if len(in_stock) != 1 else ''} en stock"
                + (f" (página {page} de {pages})" if pages > 1 else "") + ":")  # fmt: skip
        lines, buttons = [head], []
        for n, hit in enumerate(shown, start=(page - 1) * PAGE + 1):
            row = await self.live(int(hit.product["id"])) or hit.product
            lines.append(f"{n}. {row['name']} — {row['sku']}\n   {self.price(row)} · {self.stock(row)}"
                         + (f" · {STALE}" if await self.stale(row) else ""))  # fmt: skip
            if int(row["stock"]) > 0 and row["active"]:
                buttons.append((f"🛒 {row['sku']}", f"sales:add:{row['id']}:1"))
        if missing and page == 1:
            names = ", ".join(str(h.product["sku"]) for h in missing[:3])
            lines.append(f"Sin stock por ahora: {names}" + (" y otros." if len(missing) > 3 else "."))
        if page < pages:
            buttons.append(("Ver más", "sales:more"))
        lines.append("Tocá 🛒 para agregar al carrito, o escribí por ejemplo «quiero 2 de la " +
                     str(shown[0].product["sku"]) + "».")  # fmt: skip
        reply = Reply("list", extra={"query": text[:300], "page": page})
        reply.say("\n".join(lines), buttons)
        return reply

    # --- the cart ------------------------------------------------------------------------------------

    async def resolve(self, text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The product a cart instruction names: (the one, or None and the candidates to choose from)."""
        index = await self.cache.get(self.tx)
        hits = index.search(text, 20)
        if not hits:
            return None, []
        query = index.parse(text[:500])
        coded = [h for h in hits if h.why and h.why[0].startswith("modelo")] if query.codes else []
        if coded:
            top = max(h.score for h in coded)
            hits = [h for h in coded if h.score == top]
        if len(hits) == 1:
            return await self.live(int(hits[0].product["id"])), []
        ordered = sorted(hits, key=lambda h: int(h.product["stock"]) <= 0)
        return None, [h.product for h in ordered[:5]]

    async def add(self, product_id: int, quantity: int | None, problem: str | None, reply: Reply,
                  written: str = "") -> bool:  # fmt: skip
        row = await self.live(product_id)
        if row is None or not row["active"]:
            reply.say("Ese producto ya no está en el catálogo.")
            return False
        cart = await self.cart()
        have = await carts.quantity_of(self.tx, cart.id, product_id)
        stock = int(row["stock"])
        if problem in ("zero", "negative", "fraction"):
            why = {"zero": "Con 0 unidades no agrego nada", "negative": f"No puedo agregar {written} unidades",
                   "fraction": f"Las cantidades van en unidades enteras ({written} no lo es)"}[problem]  # fmt: skip
            reply.say(f"{why}. ¿Cuántas unidades de {row['sku']} querés? (un número entero, 1 o más)",
                      [(f"Agregar 1 de {row['sku']}", f"sales:add:{row['id']}:1")])  # fmt: skip
            return False
        if stock <= 0:
            await self.product_card(row, reply, quantity or 1)
            return False
        wanted = have + (quantity or 1) if problem != "huge" else None
        if wanted is None or wanted > stock:
            room = stock - have
            asked = "un millón" if problem == "huge" and "millon" in written else (written or str(quantity))
            text = f"De {row['name']} ({row['sku']}) hay {stock} unidades disponibles"
            text += f" y ya tenés {have} en el carrito" if have else ""
            if room <= 0:
                reply.say(text + ": no puedo sumar más.")
                return False
            reply.say(f"{text}: no llego a {asked}. ¿Agrego {room}?",
                      [(f"Agregar {room}", f"sales:add:{row['id']}:{room}")])  # fmt: skip
            return False
        if have == 0 and len(await carts.lines(self.tx, cart.id)) >= carts.MAX_LINES:
            reply.say(
                f"El carrito ya tiene {carts.MAX_LINES} productos distintos; confirmá este pedido y armamos otro."
            )
            return False
        currencies = {str(line.product["currency"]) for line in await carts.lines(self.tx, cart.id)}
        if currencies and str(row["currency"]) not in currencies:
            reply.say(f"{row['sku']} se cotiza en {row['currency']} y tu carrito en {', '.join(sorted(currencies))}: "
                      "hacé un pedido aparte o consultá a un ejecutivo.")  # fmt: skip
            return False
        await carts.set_quantity(self.tx, cart, product_id, wanted, self.cfg, self.now)
        line = pricing.line_total(Decimal(row["price"]), wanted)
        reply.say(f"✅ Agregué {quantity or 1} × {row['name']} ({row['sku']}) a "
                  f"{pricing.money(Decimal(row['price']), str(row['currency']))} c/u. "
                  f"En el carrito: {wanted} u. = {pricing.money(line, str(row['currency']))}.")  # fmt: skip
        return True

    async def add_items(self, items: list[talk.Item]) -> Reply:
        reply = Reply("cart")
        added = 0
        for it in items[:10]:
            row, options = await self.resolve(it.text)
            if row is None and not options:
                reply.say(f"No encontré «{it.text[:80]}» en el catálogo. Probá con el código del modelo o la marca "
                          "y el tipo (por ejemplo «cámara domo 4MP Hikvision»).")  # fmt: skip
                reply.status = "choice" if reply.status == "cart" and not added else reply.status
                continue
            if row is None:
                qty = it.quantity or 1
                lines = [f"¿Cuál de estos querés ({it.text[:60]})?"]
                buttons = []
                for option in options:
                    live = await self.live(int(option["id"])) or option
                    lines.append(f"• {live['name']} — {live['sku']} — {self.price(live)}, {self.stock(live)}")
                    if int(live["stock"]) > 0:
                        buttons.append((f"{live['sku']}", f"sales:add:{live['id']}:{qty}"))
                reply.say("\n".join(lines), buttons)
                reply.status = "choice"
                continue
            added += await self.add(int(row["id"]), it.quantity, it.problem, reply, it.written)
        if added:
            await self.show_cart(reply, brief=True)
        return reply

    async def show_cart(self, reply: Reply, brief: bool = False) -> None:
        cart = await self.cart()
        summary = await carts.summarise(self.tx, cart, self.cfg, self.now, carts.plan_of(self.variables), fix=True)
        for note in summary.notes:
            reply.say(note)
        if not summary.lines:
            reply.say("Tu carrito está vacío. Contame qué buscás (por ejemplo «cámaras domo 4MP»).")
            reply.extra.update(cart_total="", cart_lines=0)
            return
        lines = ["🛒 Tu carrito:"]
        for ln in summary.lines:
            lines.append(f"• {ln['quantity']} × {ln['name']} ({ln['sku']}) — "
                         f"{pricing.money(Decimal(ln['line_total']), summary.currency)}")  # fmt: skip
        lines.append(f"Total: {pricing.money(summary.total, summary.currency)} (IVA incluido)")
        buttons = [("🧾 Ver resumen y confirmar", "sales:sum"), ("✏️ Modificar", "sales:mod")]
        if not brief:
            lines.append("Podés seguir agregando productos, o escribir «sacá …» / «cambiá … a 3».")
        reply.say("\n".join(lines), buttons)
        reply.extra.update(cart_total=str(summary.total), cart_lines=len(summary.lines))

    async def modify(self) -> Reply:
        reply = Reply("cart")
        cart = await self.cart()
        found = await carts.lines(self.tx, cart.id)
        if not found:
            reply.say("Tu carrito está vacío.")
            return reply
        buttons = [(f"Quitar {ln.product['sku']}", f"sales:rm:{ln.product['id']}") for ln in found[:10]]
        reply.say("¿Qué cambiamos? Tocá para quitar un producto, o escribí por ejemplo «cambiá la "
                  f"{found[0].product['sku']} a 5» o «agregá 2 discos de 1 TB».", buttons)  # fmt: skip
        return reply

    async def pick_line(self, text: str) -> tuple[carts.Line | None, list[carts.Line]]:
        cart = await self.cart()
        found = await carts.lines(self.tx, cart.id)
        if not found:
            return None, []
        if not text.strip() and len(found) == 1:
            return found[0], found
        wanted = compact(text)
        direct = [ln for ln in found if wanted and len(wanted) >= 4 and wanted in compact(str(ln.product["sku"]))]
        if len(direct) == 1:
            return direct[0], found
        index = await self.cache.get(self.tx)
        ids = {int(h.product["id"]) for h in index.search(text, 50)} if text.strip() else set()
        matching = [ln for ln in found if int(ln.product["id"]) in ids]
        return (matching[0] if len(matching) == 1 else None), found

    async def remove(self, text: str, product_id: int | None = None) -> Reply:
        reply = Reply("cart")
        cart = await self.cart()
        if product_id is not None:
            row = await self.live(product_id)
            have = await carts.quantity_of(self.tx, cart.id, product_id)
            if row is None or not have:
                reply.say("Ese producto no está en tu carrito.")
            else:
                await carts.set_quantity(self.tx, cart, product_id, 0, self.cfg, self.now)
                reply.say(f"Saqué {row['name']} ({row['sku']}) del carrito.")
            await self.show_cart(reply)
            return reply
        line, found = await self.pick_line(text)
        if not found:
            reply.say("Tu carrito está vacío.")
            return reply
        if line is None:
            reply.status = "choice"
            reply.say(
                "¿Cuál saco del carrito?",
                [(f"Quitar {ln.product['sku']}", f"sales:rm:{ln.product['id']}") for ln in found[:10]],
            )
            return reply
        return await self.remove("", int(line.product["id"]))

    async def change(self, reading: talk.Reading) -> Reply:
        line, found = await self.pick_line(reading.text)
        reply = Reply("cart")
        if not found:
            reply.say("Tu carrito está vacío.")
            return reply
        if line is None:
            reply.status = "choice"
            reply.say(
                "¿De cuál producto cambio la cantidad? Escribí por ejemplo «cambiá la "
                f"{found[0].product['sku']} a {reading.number or 2}».",
                [(f"Quitar {ln.product['sku']}", f"sales:rm:{ln.product['id']}") for ln in found[:10]],
            )
            return reply
        row = line.product
        if reading.problem == "zero":
            return await self.remove("", int(row["id"]))
        if reading.problem or reading.number is None:
            reply.say("La cantidad tiene que ser un número entero de 1 o más.")
            return reply
        stock = int(row["stock"])
        if reading.number > stock:
            reply.say(
                f"De {row['sku']} hay {stock} unidades disponibles.",
                [(f"Dejar {stock}", f"sales:set:{row['id']}:{stock}")] if stock > 0 else None,
            )
            return reply
        cart = await self.cart()
        await carts.set_quantity(self.tx, cart, int(row["id"]), reading.number, self.cfg, self.now)
        reply.say(f"Listo: {reading.number} × {row['name']} ({row['sku']}).")
        await self.show_cart(reply)
        return reply

    async def set_line(self, product_id: int, quantity: int) -> Reply:
        cart = await self.cart()
        row = await self.live(product_id)
        if row is None or not await carts.quantity_of(self.tx, cart.id, product_id):
            return await self.remove("", product_id)
        return await self.change(talk.Reading("change", number=quantity, text=str(row["sku"])))

    # --- summary and confirmation -------------------------------------------------------------------

    async def summary(self, reply: Reply | None = None, why: list[str] | None = None) -> Reply:
        reply = reply or Reply("summary")
        reply.status = "summary"
        cart = await self.cart()
        summary = await carts.summarise(self.tx, cart, self.cfg, self.now, carts.plan_of(self.variables), fix=True)
        if why:
            reply.say(
                "⚠️ Cambió algo desde el resumen anterior: " + "; ".join(why) + ". Este es el resumen actualizado."
            )
        for note in summary.notes:
            reply.say(note)
        if not summary.lines:
            reply.status = "empty"
            reply.say("Tu carrito está vacío. Contame qué buscás y lo armamos.")
            reply.extra.update(cart_total="", cart_lines=0)
            return reply
        cart = await carts.get(self.tx, self.conversation_id) or cart  # set_quantity above moved the version
        version = await carts.save_summary(self.tx, cart, summary, self.now)

        def money(value: Any) -> str:
            return pricing.money(Decimal(value), summary.currency)

        lines = ["🧾 Resumen del pedido"]
        for ln in summary.lines:
            lines.append(f"• {ln['sku']} — {ln['name']}\n  {ln['quantity']} × {money(ln['unit_price'])} = "
                         f"{money(ln['line_total'])}" + (f" ({STALE})" if ln.get("stale") else ""))  # fmt: skip
        lines += [
            f"Subtotal sin IVA: {money(summary.subtotal)}",
            f"IVA {pricing.percent(summary.iva_rate)}: {money(summary.iva)}",
            f"Total: {money(summary.total)} ({summary.currency})",
        ]
        plan = summary.plan
        if plan:
            text = f"Financiación: {plan['installments']} cuotas"
            if plan.get("installment"):
                text += f" de {money(plan['installment'])}"
            if plan.get("total"):
                text += f" (total financiado {money(plan['total'])})"
            if plan.get("amount") and Decimal(str(plan["amount"]) or "0") != summary.total:
                text += f"; simulado sobre {money(plan['amount'])}: el ejecutivo lo ajusta al total del pedido"
            lines.append(text + ".")
        lines.append(f"Precios válidos hasta el {summary.valid_until:%d/%m/%Y %H:%M} (UTC).")
        if summary.stale:
            lines.append(f"{STALE_NOTE}: {', '.join(summary.stale)}. Al confirmar, un ejecutivo verifica precio y "
                         "stock antes de emitir la prefactura.")  # fmt: skip
        payload = f"sales:ok:{cart.id}:{cart.generation}:{version}"
        reply.say("\n".join(lines), [("✅ Confirmar", payload), ("✏️ Modificar", "sales:mod")])
        reply.extra.update(cart_total=str(summary.total), cart_lines=len(summary.lines))
        return reply

    async def confirm(self, cart_id: int | None, generation: int | None, version: int | None) -> Reply:
        cart = await self.cart()
        if cart_id is not None and cart_id != cart.id:
            return await self.summary(why=["ese resumen no es de este carrito"])
        if generation is not None and generation != cart.generation:
            done = await orders.for_cart(self.tx, cart.id, generation)
            reply = Reply("ordered")
            if done is not None:
                reply.say(f"Tu pedido {done.number} ya está confirmado (total "
                          f"{pricing.money(done.total, done.currency)}). No hice otro.")  # fmt: skip
                reply.extra["order"] = done.number
            else:
                reply.say("Ese resumen venció. Armemos el pedido de nuevo: contame qué necesitás.")
                reply.status = "empty"
            return reply
        shown = cart.summary
        if shown is None or (version is not None and version != cart.version):
            return await self.summary(why=["el carrito cambió después de ese resumen"] if shown or version else None)
        fresh = await carts.summarise(self.tx, cart, self.cfg, self.now, carts.plan_of(self.variables), fix=False)
        why = carts.differences(shown, fresh) + fresh.notes
        if datetime.fromisoformat(str(shown["valid_until"])) < self.now:
            why.append("venció la validez de los precios")
        if why or fresh.comparable() != {k: shown.get(k) for k in fresh.comparable()}:
            return await self.summary(why=why or ["cambiaron los precios o el stock"])
        if not fresh.lines:
            return await self.summary()
        fresh.valid_until = datetime.fromisoformat(str(shown["valid_until"]))
        buyer = await customer.get(self.tx, self.contact_id)
        if buyer is None:
            reply = Reply("need_customer")
            reply.say("Para emitir la prefactura necesito unos datos (te los pido una sola vez).")
            return reply
        try:
            order = await orders.create_from_cart(self.tx, cart, fresh, buyer, self.now, series_name=self.cfg.series)
        except orders.StockChanged:
            return await self.summary(why=["otro cliente tomó parte del stock"])
        reply = Reply("ordered", extra={"order": order.number, "cart_total": "", "cart_lines": 0})
        if order.to_check:
            reply.say(f"📝 Registré tu pedido {order.number} por {pricing.money(order.total, order.currency)}. "
                      f"Precio y stock de {', '.join(order.to_check)} están sujetos a confirmación: un ejecutivo "
                      "los verifica y te enviamos la prefactura.")  # fmt: skip
            return reply
        reply.say(f"🎉 ¡Listo! Tu pedido {order.number} quedó confirmado por "
                  f"{pricing.money(order.total, order.currency)}. Un ejecutivo te contacta por acá para el pago "
                  "y la entrega; te aviso cuando registremos el pago.")  # fmt: skip
        return reply

    async def order_status(self, text: str) -> Reply | None:
        number = re.search(r"\bpv-?\d+\b", text)
        order = None
        if number:
            digits = re.sub(r"\D", "", number.group(0))
            order = await orders.get_by_number(self.tx, f"PV-{int(digits):06d}")
            if order is not None and order.contact_id != self.contact_id:
                order = None  # another buyer's order is never shown
        order = order or await orders.latest_for_contact(self.tx, self.contact_id)
        if order is None:
            return None
        reply = Reply("order_status", extra={"order": order.number})
        paid = sum((Decimal(p["amount"]) for p in await orders.payments_of(self.tx, order.id)), Decimal(0))
        status_text = STATUS_TEXT[order.status].format(paid=pricing.money(paid, order.currency),
                                                        balance=pricing.money(order.total - paid, order.currency))  # fmt: skip
        text_out = f"Tu pedido {order.number} ({pricing.money(order.total, order.currency)}) {status_text}"
        if re.search(r"despach|envi|mandan|entreg|llega|retir", text):
            text_out += " " + DISPATCH_TEXT[order.status]
        reply.say(text_out)
        return reply

    # --- the entry -----------------------------------------------------------------------------------

    async def run(self, text: str, payload: str, previous: Mapping[str, Any], command: str = "") -> Reply:
        if payload.startswith("sales:"):
            return await self.button(payload, previous)
        if command == "summary":
            return await self.summary()
        if command == "confirm":
            cart = await self.cart()
            return await self.confirm(cart.id, cart.generation, cart.version)
        if command == "cart":
            reply = Reply("cart")
            await self.show_cart(reply)
            return reply
        reading = talk.read(text)
        if reading.kind == "explain":  # how things work or differ: the product named, else the articles
            if (await self.cache.get(self.tx)).parse(text[:500]).codes:
                return await self.answer(text)
            return Reply("none")
        if reading.kind == "more":
            query = str(previous.get("query") or "")
            if not query:
                return Reply("none")
            return await self.answer(query, int(previous.get("page") or 1) + 1)
        if reading.kind == "status":
            found = await self.order_status(reading.text)
            if found is not None:
                return found
            return await self.answer(text)
        if reading.kind == "clear":
            reply = Reply("cart")
            await carts.clear(self.tx, await self.cart(), self.cfg, self.now)
            reply.say("Vacié el carrito.")
            reply.extra.update(cart_total="", cart_lines=0)
            return reply
        if reading.kind == "remove":
            return await self.remove(reading.text)
        if reading.kind == "change":
            return await self.change(reading)
        if reading.kind == "summary":
            cart = await self.cart()
            if re.search(r"\bconfirm", fold(text)) and cart.summary and cart.summary.get("version") == cart.version:
                return await self.confirm(cart.id, cart.generation, cart.version)
            return await self.summary()
        if reading.kind == "cart":
            reply = Reply("cart")
            await self.show_cart(reply)
            return reply
        if reading.kind == "add":
            return await self.add_items(reading.items)
        return await self.answer(text)

    async def button(self, payload: str, previous: Mapping[str, Any]) -> Reply:
        parts = payload.split(":")
        verb = parts[1] if len(parts) > 1 else ""
        numbers = [int(p) if p.isdigit() and len(p) <= 12 else -1 for p in parts[2:]]
        if verb == "add" and len(numbers) == 2 and min(numbers) > 0:
            reply = Reply("cart")
            if await self.add(numbers[0], numbers[1], None, reply, str(numbers[1])):
                await self.show_cart(reply, brief=True)
            return reply
        if verb == "set" and len(numbers) == 2 and numbers[0] > 0 and numbers[1] >= 0:
            return await self.set_line(numbers[0], numbers[1])
        if verb == "rm" and len(numbers) == 1 and numbers[0] > 0:
            return await self.remove("", numbers[0])
        if verb == "more":
            return await self.run("ver más", "", previous)
        if verb == "cart":
            reply = Reply("cart")
            await self.show_cart(reply)
            return reply
        if verb == "sum":
            return await self.summary()
        if verb == "mod":
            return await self.modify()
        if verb == "ok" and len(numbers) == 3 and min(numbers) > 0:
            return await self.confirm(*numbers)
        reply = Reply("cart")
        reply.say("Ese botón ya no es válido. Contame qué necesitás.")
        return reply


async def turn(
    tx: QuickTx,
    state: dict[str, Any],
    *,
    conversation_id: int,
    contact_id: int,
    text: str,
    payload: str,
    variables: Mapping[str, Any],
    now: datetime,
    result_var: str = "sale",
    command: str = "",
) -> dict[str, Any]:
    cache = state.get(INDEX_KEY)
    if not isinstance(cache, IndexCache):
        cache = state[INDEX_KEY] = IndexCache()
    previous = variables.get(result_var)
    previous = previous if isinstance(previous, Mapping) else {}
    worker = Turn(tx, cache, conversation_id, contact_id, variables, now, await carts.load_config(tx))
    reply = await worker.run(text[:1000], payload[:256], previous, command)
    await worker.totals_extra(reply)
    result: dict[str, Any] = {"ok": True, "status": reply.status, "query": "", "page": 1, "cart_total": "",
                              "cart_lines": 0, **reply.extra}  # fmt: skip
    if reply.status in ("cart", "choice", "summary", "ordered", "order_status", "empty"):
        result["query"], result["page"] = previous.get("query", ""), previous.get("page", 1)
    if reply.messages:
        result[ACTION_MESSAGES] = reply.messages[:10]
    return result
