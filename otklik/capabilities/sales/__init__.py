"""Sales (issue 16), first part: the product catalog.

- `models.py`, `migrations/`: the products (sku, price, stock, attributes) on the capability's own branch
- `importer.py` CSV / XLSX readers and `import_catalog` (upsert by sku, all-or-nothing, a report of every error)
- `search.py`   Spanish free-text search (synonyms and units from `synonyms.yaml`, brands, model codes)
- `similar.py`  in-stock alternatives to a product (closest attributes, price band, reasons in Spanish)
- `cli.py`      `otklik catalog import|search`
See docs/sales.md.
"""

from otklik.platform.plugins import Capability

CAPABILITY = Capability(
    name="sales",
    cli=(("catalog", "otklik.capabilities.sales.cli:app"),),
    migrations="otklik.capabilities.sales:migrations",
)
