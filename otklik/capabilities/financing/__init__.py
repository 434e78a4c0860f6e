"""The financing simulator (issue 17): installment plans computed from the seller's rates table.

- `rules.py` the pure rules (Decimal only) and the rates table's format and validation
- `cli.py`   `otklik financing simulate|plans` from a rates file
- `models.py`, `migrations/`, `service.py`: named rates tables in the database, versioned, audited; the
  install's default table and one per pack
- `api.py`    `POST /api/v1/financing/simulate` (API token, scope `financing`)
- `chat.py`, `actions.py`: the flow action `financing.simulate` (quick without an LLM) and its replies
  (es-AR figures); `phrasing.py`: with an LLM, its phrasing of the reply under the numeric guardrail
- `admin.py`  `/admin/financing`: edit, import/export, history and rollback, default table, pack tables
See docs/financing.md.
"""

from otklik.platform.plugins import Capability, NavEntry, Permission

RATES = "financing.rates"  # edit the rates tables (owner and admin)

CAPABILITY = Capability(
    name="financing",
    actions="otklik.capabilities.financing.actions:ACTIONS",
    cli=(("financing", "otklik.capabilities.financing.cli:app"),),
    permissions=(Permission(RATES),),
    admin=("otklik.capabilities.financing.admin:router",),
    api=("otklik.capabilities.financing.api:router",),
    nav=(NavEntry("financing.nav", "/admin/financing", RATES, 60),),
    migrations="otklik.capabilities.financing:migrations",
    templates="otklik.capabilities.financing:templates",
    locales="otklik.capabilities.financing:locales",
)
