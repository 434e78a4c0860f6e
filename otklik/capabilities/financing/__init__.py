"""The financing simulator (issue 17): installment plans computed from the seller's rates table.

- `rules.py` the pure rules (Decimal only) and the rates table's format and validation
- `cli.py`   `otklik financing simulate|plans` from a rates file
See docs/financing.md.
"""

from otklik.platform.plugins import Capability

CAPABILITY = Capability(
    name="financing",
    cli=(("financing", "otklik.capabilities.financing.cli:app"),),
)
