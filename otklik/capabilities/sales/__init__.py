"""Sales (issue 16): the product catalog, the chat answers, the cart and the orders.

- `models.py`, `migrations/`: products, settings, order series, carts, orders, order lines and history
- `importer.py` CSV / XLSX readers and `import_catalog` (upsert by sku, all-or-nothing, a report of every error)
- `search.py`   Spanish free-text search (synonyms and units from `synonyms.yaml`, brands, model codes)
- `similar.py`  in-stock alternatives to a product (closest attributes, price band, reasons in Spanish)
- `talk.py`, `chat.py`, `actions.py`: the flow action `sales.turn` (quick): lists, a product, the cart, the
  summary and its confirmation, the order's status — figures from the live rows
- `pricing.py`  es-AR money, IVA and totals (Decimal)
- `cart.py`     the conversation's cart and its summary; `orders.py` orders, numbering, life cycle (service API)
- `jobs.py`     carts left untouched expire with a notice
- `fulfil.py`   the `sales-orders` job: executive assignment and notification, pre-invoice, invoice
- `documents.py` pre-invoice and invoice PDFs; `api.py` `POST /api/v1/orders/{number}/payments`; `payment.py`
  recording a payment (partial payments, the balance; shared by the API and the admin)
- `sync.py`     scheduled catalog sync from the seller's system (a JSON endpoint or a read-only SQL query)
- `admin.py`    orders (filters, detail, payments, reassign, cancel), the catalog (search, import with a
  preview, CSV export), the sync status and history, the settings page (`seller.py`)
- `cli.py`      `otklik catalog import|search|sync …`
See docs/sales.md.
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

ORDERS = "sales.orders"  # see and change orders (owner, admin and operators)
CATALOG = "sales.catalog"  # see the catalog (owner, admin and operators)

CAPABILITY = Capability(
    name="sales",
    actions="otklik.capabilities.sales.actions:ACTIONS",
    jobs=(
        JobSpec("sales-cart-expiry", "otklik.capabilities.sales.jobs:cart_expiry_job"),
        JobSpec("sales-orders", "otklik.capabilities.sales.fulfil:orders_job"),
        JobSpec("sales-catalog-sync", "otklik.capabilities.sales.sync:sync_job"),
    ),
    api=("otklik.capabilities.sales.api:router",),
    cli=(("catalog", "otklik.capabilities.sales.cli:app"),),
    permissions=(Permission(ORDERS, frozenset({"operator"})), Permission(CATALOG, frozenset({"operator"}))),
    admin=("otklik.capabilities.sales.admin:router",),
    nav=(
        NavEntry("sales.nav_orders", "/admin/sales/orders", ORDERS, 55),
        NavEntry("sales.nav_catalog", "/admin/sales/catalog", CATALOG, 56),
        NavEntry("sales.nav_settings", "/admin/sales/settings", CATALOG, 57),
    ),
    migrations="otklik.capabilities.sales:migrations",
    templates="otklik.capabilities.sales:templates",
    locales="otklik.capabilities.sales:locales",
    counters="otklik.capabilities.sales.counters:COUNTERS",
)
