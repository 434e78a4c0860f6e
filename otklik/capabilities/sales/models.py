"""The capability's tables, on its own metadata: the product catalog."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, MetaData, Numeric, String, Table, Text

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
