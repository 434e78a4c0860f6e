"""The financing simulator (issue 17): installment plans computed from the seller's rates table.

- `rules.py` the pure rules (Decimal only) and the rates table's format and validation
See docs/financing.md.
"""

from otklik.platform.plugins import Capability

CAPABILITY = Capability(name="financing")
