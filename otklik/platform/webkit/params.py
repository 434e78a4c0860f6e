"""The integers a request may carry into SQL, bounded once for every route.

SQLite stores a 64-bit INTEGER and PostgreSQL ids are BIGINT: a larger or smaller number cannot be bound
to a query at all (SQLite: `OverflowError`, PostgreSQL: `DataError`), which would surface as a 500. Every
route parameter that is an id or a cursor uses one of these types, so such a number is refused by the
schema (422) before the handler runs. `tests/admin/test_int_overflow.py` enumerates the app's routes and
fails for an int parameter without these bounds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

from otklik.core.errors import InvalidInput

BIGINT_MAX = 2**63 - 1  # ids: BIGINT on PostgreSQL, INTEGER (64-bit) on SQLite
INT_MAX = 2**31 - 1  # 32-bit INTEGER columns on PostgreSQL (a flow's version)

PathId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
"""A row id in the path: 1 .. 2**63-1."""

QueryId = Annotated[int, Query(ge=1, le=BIGINT_MAX)]
"""A row id in the query string: 1 .. 2**63-1 (required unless the route gives a default)."""

QueryCursor = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
"""A position in the query string ("after this id"; 0 = from the start): 0 .. 2**63-1."""

QueryVersion = Annotated[int | None, Query(ge=1, le=INT_MAX)]
"""An optional flow version in the query string: 1 .. 2**31-1."""

BodyId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
"""A row id in a JSON or form body model."""

BodyVersion = Annotated[int, Field(ge=1, le=INT_MAX)]
"""A flow version in a JSON body model."""


def parse_id(text: str, field: str) -> int:
    """A row id typed into a form field; anything else is `InvalidInput` (422), never an overflow."""
    value = text.strip()
    if not value.isdigit() or len(value) > 19 or not 1 <= int(value) <= BIGINT_MAX:
        raise InvalidInput(f"{field}: a whole number from 1 to {BIGINT_MAX}")
    return int(value)
