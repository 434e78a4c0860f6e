"""The capability's tables, on its own metadata: the product catalog, carts, orders and their history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")

products = Table(
    "sales_products",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("brand", String(80), nullable=False, default=""),
    Column("category", String(80), nullable=False, default="", index=True),
    Column("price", Numeric(14, 2), nullable=False),
    Column("currency", String(3), nullable=False, default="ARS"),
    # prices as the seller lists them: with IVA included (the usual case for a consumer price list) or net
    Column("prices_include_iva", Boolean, nullable=False, default=True),
    Column("stock", Integer, nullable=False, default=0),
    Column("description", Text, nullable=False, default=""),
    Column("attributes", JSON, nullable=False, default=dict),  # {"resolution": "4MP", "form": "domo", …}
    Column("images", JSON, nullable=False, default=list),  # URLs
    Column("active", Boolean, nullable=False, default=True, index=True),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False, index=True),  # the search cache's key
)

# --- cart, orders (migration s002) ------------------------------------------------------------------------

# The catalog's commercial settings, one row (id 1, written by the migration): the IVA rate, how long a
# summary's prices hold, how long an untouched cart lives.
config = Table(
    "sales_config",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("iva_rate", Numeric(5, 2), nullable=False),  # percent, e.g. 21.00
    Column("validity_hours", Integer, nullable=False),  # a summary's prices hold this long
    Column("cart_ttl_hours", Integer, nullable=False),  # an untouched open cart expires after this
    Column("series", String(32), nullable=False),  # the series new orders are numbered in
    # the seller's letterhead on the pre-invoice and the invoice, and our invoice series (migration s003)
    Column("seller_name", String(200), nullable=False, default=""),
    Column("seller_cuit", String(20), nullable=False, default=""),
    Column("seller_address", String(300), nullable=False, default=""),
    Column("payment_instructions", Text, nullable=False, default=""),  # one line per instruction
    Column("invoice_series", String(32), nullable=False, default="FC"),
    # the logo on the documents: a PNG or JPEG in the media store (its sha256), "" for none (migration s005)
    Column("logo_media_id", String(64), nullable=False, default=""),
    # a product row not refreshed for this many hours is quoted "sujeto a confirmación"; 0 = off (s008)
    Column("freshness_hours", Integer, nullable=False, default=0, server_default="0"),
)

# Order number series: `prefix` + `next_value` zero-padded to `width` (PV-000123). A number is taken with
# one `UPDATE … RETURNING` on the row, which PostgreSQL serialises by the row lock (no gaps, no duplicates).
series = Table(
    "sales_series",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("width", Integer, nullable=False),
    Column("next_value", BigInteger, nullable=False),
)

# One cart per conversation. `generation` grows when the cart becomes an order or expires (its lines are
# then cleared), so an order is unique per (cart, generation): a second "Confirmar" cannot make another.
# `version` grows with every change and every summary shown; the "Confirmar" button carries it.
carts = Table(
    "sales_carts",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("conversation_id", BIGID, nullable=False, unique=True),  # conversations.id (a platform table: no FK)
    Column("contact_id", BIGID, nullable=False, index=True),
    Column("generation", Integer, nullable=False, default=1),
    Column("version", Integer, nullable=False, default=0),
    Column("summary", JSON, nullable=True),  # what the last summary showed (lines, prices, totals, validity)
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    Column("expires_at", UTCDateTime(timezone=True), nullable=True, index=True),  # null: empty cart
)

cart_lines = Table(
    "sales_cart_lines",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("cart_id", BIGID, ForeignKey("sales_carts.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", BIGID, ForeignKey("sales_products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", UTCDateTime(timezone=True), nullable=False),
    UniqueConstraint("cart_id", "product_id"),
)

orders = Table(
    "sales_orders",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("cart_id", BIGID, ForeignKey("sales_carts.id", ondelete="SET NULL"), nullable=True),
    Column("cart_generation", Integer, nullable=False),
    Column("conversation_id", BIGID, nullable=True, index=True),
    Column("contact_id", BIGID, nullable=True, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("subtotal", Numeric(14, 2), nullable=False),  # without IVA
    Column("iva", Numeric(14, 2), nullable=False),
    Column("iva_rate", Numeric(5, 2), nullable=False),
    Column("total", Numeric(14, 2), nullable=False),
    Column("plan", JSON, nullable=True),  # the financing plan chosen in the conversation, as it was
    Column("customer", JSON, nullable=False, default=dict),  # razón social, CUIT, condición IVA, delivery
    Column("valid_until", UTCDateTime(timezone=True), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    # the executive (staff_members.id, a platform table: no FK) and when the assignment ran (s003); the
    # worker's order step does it once: assigned_at set even when the pack has no executive
    Column("assignee_id", BIGID, nullable=True, index=True),
    Column("assigned_at", UTCDateTime(timezone=True), nullable=True),
    # the SKUs quoted "sujeto a confirmación" (a row older than the freshness, s008): the pre-invoice waits
    # until an executive confirms price and stock on the admin's order page, which sets it back to null
    Column("to_check", JSON(none_as_null=True), nullable=True),
    UniqueConstraint("cart_id", "cart_generation"),  # one order per confirmed cart: a double tap is refused
)

order_lines = Table(
    "sales_order_lines",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("order_id", BIGID, ForeignKey("sales_orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("product_id", BIGID, ForeignKey("sales_products.id"), nullable=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(300), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(14, 2), nullable=False),  # as listed at confirmation
    Column("prices_include_iva", Boolean, nullable=False),
    Column("line_total", Numeric(14, 2), nullable=False),
)

order_history = Table(
    "sales_order_history",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("order_id", BIGID, ForeignKey("sales_orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(120), nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("at", UTCDateTime(timezone=True), nullable=False),
)


# --- documents, payments (migration s003) -----------------------------------------------------------------

# The PDFs of an order: our pre-invoice, the invoice (ours, or the ERP's), kept in the media store.
# `sent_at`: when the bot message carrying it was queued to the buyer (null: not sent yet).
documents = Table(
    "sales_documents",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("order_id", BIGID, ForeignKey("sales_orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # pre_invoice | invoice
    Column("number", String(40), nullable=False),
    Column("source", String(10), nullable=False),  # ours | erp
    Column("media_id", String(64), nullable=False),
    Column("filename", String(120), nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("sent_at", UTCDateTime(timezone=True), nullable=True),
    UniqueConstraint("order_id", "kind"),  # one pre-invoice, one invoice per order
)

# Payments reported by the ERP (`POST /api/v1/orders/{number}/payments`) or entered in the admin; several per
# order (partial payments, migration s007) adding up to at most the total; a non-empty `reference` is the
# idempotency key within the order (checked under the order's lock).
payments = Table(
    "sales_payments",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("order_id", BIGID, ForeignKey("sales_orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("amount", Numeric(14, 2), nullable=False),
    Column("reference", String(120), nullable=False, default=""),
    Column("invoice_number", String(40), nullable=True),
    Column("actor", String(120), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
)

# --- scheduled catalog sync (migration s004) --------------------------------------------------------------

# A seller's system the catalog is pulled from every `every_minutes`: a JSON HTTP endpoint or a read-only SQL
# query. `secret` is Vault-encrypted (the JSON source's bearer token; the SQL source's whole URL), `url` is
# what lists show (the SQL URL with its password masked). `lease_owner`/`lease_until` are the claim that
# keeps two workers off the same source; `next_run_at` is when it is due.
sync_sources = Table(
    "sales_sync_sources",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # json | sql
    Column("url", String(2000), nullable=False),
    Column("secret", Text, nullable=True),
    Column("query", Text, nullable=True),  # sql: the SELECT
    Column("options", JSON, nullable=False, default=dict),  # json: paging, items_key, per_page
    Column("mapping", JSON, nullable=False, default=dict),  # the source's field -> our column
    Column("replace", Boolean, nullable=False, default=False),  # deactivate what the source no longer lists
    Column("prices_include_iva", Boolean, nullable=False, default=True),
    Column("every_minutes", Integer, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("next_run_at", UTCDateTime(timezone=True), nullable=False, index=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime(timezone=True), nullable=True),
    Column("last_run_at", UTCDateTime(timezone=True), nullable=True),
    Column("last_status", String(8), nullable=True),  # ok | failed
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
)

sync_runs = Table(
    "sales_sync_runs",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("source_id", BIGID, ForeignKey("sales_sync_sources.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("started_at", UTCDateTime(timezone=True), nullable=False),
    Column("finished_at", UTCDateTime(timezone=True), nullable=True),
    Column("status", String(8), nullable=False),  # running | ok | failed
    Column("rows", Integer, nullable=False, default=0),
    Column("added", Integer, nullable=False, default=0),
    Column("changed", Integer, nullable=False, default=0),
    Column("deactivated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    # the worker's lease id (migration s006): a 'running' row whose owner no longer holds the source's lease
    # is stale (the worker died); the next run closes it as interrupted
    Column("owner", String(64), nullable=True),
)
