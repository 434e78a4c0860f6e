"""CRM hand-over (issue 20): leads and bookings handed to Bitrix24 or amoCRM / Kommo.

- `bitrix24.py`, `amocrm.py`: the connectors (httpx), behind the `base.Connector` protocol
- `sync.py`    the job: the consumer of the internal webhook endpoint `internal:crm` (`lead.*`, `booking.*`
  emitted by any capability with `platform.webhooks.emit`), durable through the webhook outbox
- `service.py` connections (secrets encrypted with the Vault), mapping, test; `models.py`, `migrations/`
- `cli.py`     `otklik crm add bitrix24|amocrm`, `test`, `list`, `mapping`, `failures`, `retry`
- `admin.py`   `/admin/crm`: connections, the mapping form, failures with a retry button
Fakes: `otklik/testing/fake_bitrix24.py`, `fake_amocrm.py`. See docs/crm.md.
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry

CAPABILITY = Capability(
    name="crm",
    jobs=(JobSpec("crm", "otklik.capabilities.crm.sync:crm_job"),),
    cli=(("crm", "otklik.capabilities.crm.cli:app"),),
    admin=("otklik.capabilities.crm.admin:router",),
    nav=(NavEntry("crm.nav", "/admin/crm", "settings", 96),),
    migrations="otklik.capabilities.crm:migrations",
    templates="otklik.capabilities.crm:templates",
    locales="otklik.capabilities.crm:locales",
)
